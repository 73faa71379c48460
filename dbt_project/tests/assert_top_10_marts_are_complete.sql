{#
    For each source, each top-10 mart has exactly min(10, coins with a value) rows from that
    source's latest snapshot of its ranking (market_cap for cap_top_10, volume_24h for
    vol_top_10), all of that snapshot, and its shares sum to 1. Returns one row per broken
    mart and source.
#}

with

-- Not materialized: referenced several times, and a materialized CTE would copy every
-- snapshot ever loaded; inlined, the filters use raw.crypto_listings' primary key.
listings as not materialized (

    select * from {{ ref('stg_crypto_listings') }}

),

{{ latest_listings_snapshots('listings') }}

expected as (

    select
        latest_snapshots.source,
        latest_snapshots.ranked_by,
        latest_snapshots.snapshot_at,
        case latest_snapshots.ranked_by
            when 'market_cap' then least(10, count(listings.market_cap))
            else least(10, count(listings.volume_24h))
        end as expected_rows
    from latest_snapshots
    left join listings
        on listings.source = latest_snapshots.source
        and listings.ranked_by = latest_snapshots.ranked_by
        and listings.snapshot_at = latest_snapshots.snapshot_at
    group by latest_snapshots.source, latest_snapshots.ranked_by, latest_snapshots.snapshot_at

),

actual as (

    {% for mart, ranked_by in [('cap_top_10', 'market_cap'), ('vol_top_10', 'volume_24h')] %}
    select
        '{{ mart }}' as mart,
        expected.source,
        count(rows.rank) as n_rows,
        count(distinct rows.snapshot_at) as n_snapshots,
        max(rows.snapshot_at) as snapshot_at,
        coalesce(sum(rows.share_of_top_10), 0) as total_share,
        max(expected.expected_rows) as expected_rows,
        max(expected.snapshot_at) as expected_snapshot_at
    from expected
    left join {{ ref(mart) }} as rows
        on rows.source = expected.source
    where expected.ranked_by = '{{ ranked_by }}'
    group by expected.source
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select * from actual
    where n_rows <> expected_rows
        or n_snapshots > 1
        or snapshot_at is distinct from expected_snapshot_at
        or (n_rows > 0 and abs(total_share - 1) > 1e-9)

)

select * from final
