{#
    The incremental coin_price_hourly equals a full recomputation from quotes_coins: every
    hour that got late quotes was recomputed. Returns the differences.

    avg_price is compared with a relative tolerance: a float sum depends on the order the
    rows are added in, which differs between plans (a parallel full aggregation vs the
    incremental per-hour one), so an exact comparison reports ~1e-15 noise as differences.

    Scans all of quotes_coins: tagged `audit`, so it runs in the daily crypto_marts_audit DAG,
    not in the per-minute build.
#}

{{ config(tags=['audit']) }}

with

incremental as (

    select
        source, coin_id, quote_currency, hour_at, open_price, high_price, low_price, close_price,
        avg_price, samples
    from {{ ref('coin_price_hourly') }}

),

full_refresh as (

    select
        source,
        coin_id,
        quote_currency,
        date_trunc('hour', last_updated_at, 'UTC') as hour_at,
        (array_agg(price order by last_updated_at))[1] as open_price,
        max(price) as high_price,
        min(price) as low_price,
        (array_agg(price order by last_updated_at desc))[1] as close_price,
        avg(price) as avg_price,
        count(*) as samples
    from {{ ref('quotes_coins') }}
    group by 1, 2, 3, 4

),

compared as (

    select
        coalesce(full_refresh.source, incremental.source) as source,
        coalesce(full_refresh.coin_id, incremental.coin_id) as coin_id,
        coalesce(full_refresh.quote_currency, incremental.quote_currency) as quote_currency,
        coalesce(full_refresh.hour_at, incremental.hour_at) as hour_at,
        case
            when incremental.coin_id is null then 'missing from coin_price_hourly'
            when full_refresh.coin_id is null then 'not in a full refresh'
            else 'values differ'
        end as problem,
        full_refresh.avg_price as expected_avg_price,
        incremental.avg_price as actual_avg_price
    from full_refresh
    full outer join incremental
        on full_refresh.source = incremental.source
        and full_refresh.coin_id = incremental.coin_id
        and full_refresh.quote_currency = incremental.quote_currency
        and full_refresh.hour_at = incremental.hour_at
    where incremental.coin_id is null
        or full_refresh.coin_id is null
        or full_refresh.open_price is distinct from incremental.open_price
        or full_refresh.high_price is distinct from incremental.high_price
        or full_refresh.low_price is distinct from incremental.low_price
        or full_refresh.close_price is distinct from incremental.close_price
        or full_refresh.samples is distinct from incremental.samples
        or abs(full_refresh.avg_price - incremental.avg_price)
            > 1e-9 * greatest(abs(full_refresh.avg_price), 1)
        or (full_refresh.avg_price is null) <> (incremental.avg_price is null)

)

select * from compared
