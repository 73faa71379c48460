{#
    For each data source ('coinmarketcap', 'simulator'), the ten coins of its latest
    listings snapshot ranked by `metric` (a column of stg_crypto_listings, and the snapshot's
    ranked_by: the market-cap listing for market_cap, CoinMarketCap's sort=volume_24h listing
    of the whole market for volume_24h) with the largest `metric`, with each
    one's share of the ten: a simulated snapshot never ranks among real ones, and after a
    switch the old source's last ten stay apart, under their own source. Each row carries its
    snapshot's quote_currency. Coins without a value for the metric cannot be ranked by it;
    ties go to the lower coin_id. cap_top_10 and vol_top_10 differ only in the metric, so
    they share this one query.
#}
{% macro top_10_from_latest_listings(metric) %}
with

-- Not materialized: referenced twice, and a materialized CTE would copy every snapshot ever
-- loaded; inlined, max(snapshot_at) and the filter use raw.crypto_listings' primary key.
listings as not materialized (

    select * from {{ ref('stg_crypto_listings') }}

),

{{ latest_listings_snapshots('listings') }}

latest_snapshot as (

    select listings.*
    from listings
    inner join latest_snapshots
        on listings.source = latest_snapshots.source
        and listings.ranked_by = latest_snapshots.ranked_by
        and listings.snapshot_at = latest_snapshots.snapshot_at
    where listings.ranked_by = '{{ metric }}'

),

ranked as (

    select
        *,
        row_number() over (
            partition by source order by {{ metric }} desc, coin_id asc
        ) as rank

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
        {{ metric }} / nullif(sum({{ metric }}) over (partition by source), 0)
            as share_of_top_10

    from top_10

)

select * from final
{% endmacro %}


{#
    CTE `name` (default `latest_snapshots`): each source's newest listings snapshot_at per
    ranking (null for one never loaded): one probe of raw.crypto_listings' primary key
    (source, ranked_by, snapshot_at, coin_id) per source and ranking. `loaded_before` maps a
    ranking to a SQL timestamptz: only rows stamped (loaded_at) before it count for that
    ranking.
#}
{% macro latest_listings_snapshots(listings, name='latest_snapshots', loaded_before={}) %}
{{ name }} as (

    {% for data_source in raw_data_sources()['crypto_listings'] %}
    {% for ranked_by in ['market_cap', 'volume_24h'] %}
    select
        '{{ data_source }}'::text as source,
        '{{ ranked_by }}'::text as ranked_by,
        (
            select max(snapshot_at) from {{ listings }}
            where source = '{{ data_source }}' and ranked_by = '{{ ranked_by }}'
            {%- if ranked_by in loaded_before %}
                and loaded_at < {{ loaded_before[ranked_by] }}
            {%- endif %}
        ) as snapshot_at
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),
{% endmacro %}
