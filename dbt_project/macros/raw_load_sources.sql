{#
    The raw tables whose loads pipeline_health reports, counted per minute by
    raw_loads_per_minute (each has a loaded_at column; the big ones index it).
#}
{% macro raw_load_sources() -%}
    {{ return(['crypto_quotes', 'crypto_listings', 'fx_rates']) }}
{%- endmacro %}
