{{
    config(
        materialized='incremental',
        unique_key=['source_name', 'source', 'minute_at'],
        incremental_strategy='delete+insert',
        pre_hook="{{ record_safe_point(raw_load_relations()) }}",
        indexes=[
            {'columns': ['source_name', 'source', 'minute_at'], 'unique': true},
        ]
    )
}}

{#
    How many rows each raw table loaded per minute (by loaded_at) from each data source
    ('coinmarketcap' or 'simulator' for quotes and listings; the FX provider for fx_rates), so
    pipeline_health can answer "rows in the last hour" from about 60 rows here instead of
    counting ~300,000 raw rows an hour at 5,000 coins a minute on every dashboard refresh.
    Quotes also count the rows quarantined for breaking the value rules (invalid_reason), with
    one of their reasons.

    Intermediate, not a mart: a step pipeline_health builds its answer from (it reads this
    four times per raw table), in schema intermediate, which the dashboard role cannot read.

    Incremental: each run recounts, through the raw loaded_at indexes, every whole minute from
    the safe point its last run recorded (macros/incremental_watermark.sql), and replaces
    those minutes. So a row that commits late (loaded_at is the insert's clock time) is
    counted by the next run, however late it commits.
#}

{%- set sources = raw_load_sources() %}

{% for name in sources %}
select
    '{{ name }}'::text as source_name,
    source,
    date_trunc('minute', loaded_at) as minute_at,
    count(*)::bigint as rows_loaded,
    {% if name == 'crypto_quotes' -%}
    count(invalid_reason)::bigint as rows_quarantined,
    min(invalid_reason) as quarantine_reason,
    {%- else -%}
    0::bigint as rows_quarantined,
    null::text as quarantine_reason,
    {%- endif %}
    max(loaded_at) as last_loaded_at

{% if name == 'crypto_quotes' -%}
from {{ ref('stg_crypto_quotes') }}
{%- else -%}
from {{ source('raw', name) }}
{%- endif %}

{% if is_incremental() %}
where loaded_at >= date_trunc('minute', {{ incremental_watermark('minute_at') }})
{% endif %}

group by source, date_trunc('minute', loaded_at)
{% if not loop.last %}

union all

{% endif %}
{%- endfor %}
