{#
    The ten coins of the latest listings snapshot with the largest `metric` (a column of
    stg_crypto_listings), with each one's share of the ten. Coins without a value for the
    metric cannot be ranked by it; ties go to the lower coin_id. cap_top_10 and vol_top_10
    differ only in the metric, so they share this one query.
#}
{% macro top_10_from_latest_listings(metric) %}
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

    select
        *,
        row_number() over (order by {{ metric }} desc, coin_id asc) as rank

    from latest_snapshot
    where {{ metric }} is not null

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
        {{ metric }} / nullif(sum({{ metric }}) over (), 0) as share_of_top_10

    from top_10

)

select * from final
{% endmacro %}
