{#
    The raw tables whose loads pipeline_health reports, counted per minute by
    int_loads_per_minute (each has a loaded_at column; the big ones index it).
#}
{% macro raw_load_sources() -%}
    {{ return(['crypto_quotes', 'crypto_listings', 'fx_rates']) }}
{%- endmacro %}


{#- The same tables as relations (for record_safe_point: whose writers matter). -#}
{% macro raw_load_relations() -%}
    {%- set relations = [] -%}
    {%- for name in raw_load_sources() -%}
        {%- do relations.append(source('raw', name)) -%}
    {%- endfor -%}
    {{ return(relations) }}
{%- endmacro %}


{#-
    Where each raw table's rows can come from (its `source` values). pipeline_health reports
    one row per table and source that ever loaded, looking each one up through the
    int_loads_per_minute index instead of scanning for the distinct values.
-#}
{% macro raw_data_sources() -%}
    {{ return({
        'crypto_quotes': ['coinmarketcap', 'simulator'],
        'crypto_listings': ['coinmarketcap', 'simulator'],
        'fx_rates': ['frankfurter', 'simulator'],
    }) }}
{%- endmacro %}
