{{
    config(
        materialized='incremental',
        unique_key=['coin_id', 'quote_currency', 'hour_at'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['coin_id', 'quote_currency', 'hour_at'], 'unique': true},
            {'columns': ['last_loaded_at']},
        ]
    )
}}

with

quotes as (

    select
        *,
        date_trunc('hour', last_updated_at, 'UTC') as hour_at

    from {{ ref('quotes_coins') }}

),

{% if is_incremental() %}
-- The hours that received quotes since the last run (with the lookback); only these are
-- recomputed, each from ALL of its quotes, and replace their old rows via the unique key.
affected_hours as (

    select distinct
        coin_id,
        quote_currency,
        hour_at

    from quotes
    where loaded_at > (
        select coalesce(max(last_loaded_at), '-infinity'::timestamptz)
            - interval '{{ var("incremental_lookback") }}'
        from {{ this }}
    )

),

hour_quotes as (

    select quotes.*

    from quotes
    inner join affected_hours
        on quotes.coin_id = affected_hours.coin_id
        and quotes.quote_currency = affected_hours.quote_currency
        and quotes.hour_at = affected_hours.hour_at

),
{% else %}
hour_quotes as (

    select * from quotes

),
{% endif %}

hourly as (

    select
        coin_id,
        quote_currency,
        hour_at,
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

    from hour_quotes
    group by coin_id, quote_currency, hour_at

),

final as (

    select
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
