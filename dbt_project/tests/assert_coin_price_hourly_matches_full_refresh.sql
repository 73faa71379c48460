{#
    The incremental coin_price_hourly equals a full recomputation from quotes_coins: every
    hour that got late quotes was recomputed. Returns the differences.
#}

with

incremental as (

    select coin_id, quote_currency, hour_at, open_price, high_price, low_price, close_price,
        avg_price, samples
    from {{ ref('coin_price_hourly') }}

),

full_refresh as (

    select
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
    group by 1, 2, 3

),

differences as (

    (select * from full_refresh except select * from incremental)
    union all
    (select * from incremental except select * from full_refresh)

)

select * from differences
