with

quotes as (

    select * from {{ ref('quotes_coins') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by coin_id, quote_currency
            order by last_updated_at desc, fetched_at desc nulls last, loaded_at desc
        ) as recency_rank

    from quotes

),

final as (

    select
        quote_key,
        coin_id,
        symbol,
        name,
        slug,
        quote_currency,
        source,
        is_simulated,
        cmc_rank,
        price,
        volume_24h,
        volume_change_24h,
        percent_change_1h,
        percent_change_24h,
        percent_change_7d,
        percent_change_30d,
        market_cap,
        market_cap_dominance,
        fully_diluted_market_cap,
        circulating_supply,
        total_supply,
        max_supply,
        last_updated_at,
        fetched_at,
        loaded_at

    from ranked
    where recency_rank = 1

)

select * from final
