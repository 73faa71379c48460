{{ config(materialized='view') }}

{#
    A view, so it is current whenever the dashboard asks, and cheap at any size: it runs with
    its owner's rights (the read-only dashboard role needs no access to raw) and never counts
    a whole hour of raw rows (~300,000 an hour at 5,000 coins a minute).

    rows_last_hour is exact (loaded_at >= now() - 1 hour) and adds three parts:
    - the part-minute at the window's start, counted in raw (at most one minute of rows);
    - the whole minutes after it that raw_loads_per_minute holds, before its newest minute
      (that one may have been counted while still filling);
    - everything from that newest minute on, counted in raw (the rows loaded since the last
      dbt build: about a minute of rows while builds keep up).
    Each raw count is a range on the source's loaded_at index. A row that commits late into a
    minute already counted shows once the next build recounts that minute.
#}

{%- set sources = raw_load_sources() %}

with

{% for name in sources %}
{{ name }}_counted as (

    select coalesce(max(minute_at), '-infinity'::timestamptz) as newest_minute
    from {{ ref('raw_loads_per_minute') }}
    where source_name = '{{ name }}'

),

{{ name }} as (

    select
        '{{ name }}' as source_name,
        (select max(loaded_at) from {{ source('raw', name) }}) as last_loaded_at,
        (
            (
                select count(*)
                from {{ source('raw', name) }}
                where loaded_at >= now() - interval '1 hour'
                  and loaded_at < date_trunc('minute', now() - interval '1 hour')
                      + interval '1 minute'
            )
            + (
                select coalesce(sum(rows_loaded), 0)
                from {{ ref('raw_loads_per_minute') }}
                where source_name = '{{ name }}'
                  and minute_at >= date_trunc('minute', now() - interval '1 hour')
                      + interval '1 minute'
                  and minute_at < (select newest_minute from {{ name }}_counted)
            )
            + (
                select count(*)
                from {{ source('raw', name) }}
                where loaded_at >= date_trunc('minute', now() - interval '1 hour')
                      + interval '1 minute'
                  and loaded_at >= (select newest_minute from {{ name }}_counted)
            )
        )::bigint as rows_last_hour,
        {% if name == 'crypto_quotes' -%}
        (
            select count(*)
            from {{ source('raw', 'crypto_quotes_rejected') }}
            where rejected_at >= now() - interval '1 hour'
        ) as rejected_last_hour
        {%- else -%}
        0::bigint as rejected_last_hour
        {%- endif %}

),

{% endfor %}
final as (

    select * from crypto_quotes
    union all
    select * from crypto_listings
    union all
    select * from fx_rates

)

select * from final
