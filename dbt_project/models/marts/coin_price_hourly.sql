{{
    config(
        materialized='incremental',
        unique_key=['source', 'coin_id', 'quote_currency', 'hour_at'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ record_safe_point([ref('quotes_coins')]) }}",
        indexes=[
            {'columns': ['source', 'coin_id', 'quote_currency', 'hour_at'], 'unique': true},
            {'columns': ['last_loaded_at']},
        ]
    )
}}

{#- One hour's statistics over its quotes; shared by the full and the incremental build.
    Per source: a candle never mixes simulated and real prices. -#}
{%- set hour_statistics -%}
        (array_agg(symbol order by last_updated_at desc))[1] as symbol,
        (array_agg(name order by last_updated_at desc))[1] as name,
        (array_agg(price order by last_updated_at asc))[1] as open_price,
        max(price) as high_price,
        min(price) as low_price,
        (array_agg(price order by last_updated_at desc))[1] as close_price,
        avg(price) as avg_price,
        count(*) as samples,
        max(last_updated_at) as last_updated_at,
        max(loaded_at) as last_loaded_at
{%- endset %}

with

-- Not materialized: referenced twice below, and a materialized CTE would copy all of
-- quotes_coins before any filter or index could apply.
quotes as not materialized (

    select * from {{ ref('quotes_coins') }}

),

{% if is_incremental() %}
-- The hours that received quotes since the safe point the last run recorded, found through
-- the quotes_coins index on transformed_at (macros/incremental_watermark.sql); only these are
-- recomputed, each from ALL of its quotes, and replace their old rows via the unique key.
affected_hours as (

    select distinct
        source,
        coin_id,
        quote_currency,
        date_trunc('hour', last_updated_at, 'UTC') as hour_at

    from quotes
    where transformed_at > {{ incremental_watermark('last_loaded_at') }}

),

hourly as (

    -- Each affected hour aggregated on its own, in a LATERAL subquery over a range of
    -- last_updated_at: a parameterised scan of the quotes_coins index on (source, coin_id,
    -- quote_currency, last_updated_at) per hour, with no big sort. An equality on
    -- date_trunc(...) cannot use that index at all, and a plain join let the planner pick
    -- a merge join that walked the whole index (all history).
    select
        affected_hours.source,
        affected_hours.coin_id,
        affected_hours.quote_currency,
        affected_hours.hour_at,
        hour_statistics.*

    from affected_hours
    cross join lateral (

        select
        {{ hour_statistics }}

        from quotes
        where quotes.source = affected_hours.source
            and quotes.coin_id = affected_hours.coin_id
            and quotes.quote_currency = affected_hours.quote_currency
            and quotes.last_updated_at >= affected_hours.hour_at
            and quotes.last_updated_at < affected_hours.hour_at + interval '1 hour'

    ) as hour_statistics

),
{% else %}
hourly as (

    select
        source,
        coin_id,
        quote_currency,
        date_trunc('hour', last_updated_at, 'UTC') as hour_at,
        {{ hour_statistics }}

    from quotes
    group by source, coin_id, quote_currency, date_trunc('hour', last_updated_at, 'UTC')

),
{% endif %}

final as (

    select
        source,
        source = 'simulator' as is_simulated,
        coin_id,
        symbol,
        name,
        quote_currency,
        hour_at,
        open_price,
        high_price,
        low_price,
        close_price,
        avg_price,
        samples,
        last_updated_at,
        last_loaded_at

    from hourly

)

select * from final
