with

-- Not materialized: referenced twice, and a materialized CTE would copy every snapshot ever
-- loaded; inlined, max(snapshot_at) and the filter use raw.crypto_listings' primary key.
listings as not materialized (

    select * from {{ ref('stg_crypto_listings') }}

),

latest_snapshot as (

    select *
    from listings
    where snapshot_at = (select max(snapshot_at) from listings)

),

ranked as (

    -- Coins without a market cap cannot be ranked by it.
    select
        *,
        row_number() over (order by market_cap desc, coin_id asc) as rank

    from latest_snapshot
    where market_cap is not null

),

top_10 as (

    select * from ranked
    where rank <= 10

),

final as (

    select
        snapshot_at,
        rank,
        coin_id,
        symbol,
        name,
        quote_currency,
        source,
        is_simulated,
        price,
        market_cap,
        volume_24h,
        market_cap_dominance,
        circulating_supply,
        market_cap / nullif(sum(market_cap) over (), 0) as share_of_top_10

    from top_10

)

select * from final
