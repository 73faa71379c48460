{#
    Each top-10 mart has exactly min(10, coins with a value) rows from the latest snapshot,
    all of that snapshot, and its shares sum to 1. Returns one row per broken mart.
#}

with

-- Not materialized: referenced twice, and a materialized CTE would copy every snapshot ever
-- loaded; inlined, max(snapshot_at) and the filter use raw.crypto_listings' primary key.
listings as not materialized (

    select * from {{ ref('stg_crypto_listings') }}

),

latest as (

    select * from listings
    where snapshot_at = (select max(snapshot_at) from listings)

),

expected as (

    select
        least(10, count(market_cap)) as cap_rows,
        least(10, count(volume_24h)) as vol_rows,
        max(snapshot_at) as snapshot_at
    from latest

),

actual as (

    select
        'cap_top_10' as mart,
        count(*) as n_rows,
        count(distinct snapshot_at) as n_snapshots,
        max(snapshot_at) as snapshot_at,
        coalesce(sum(share_of_top_10), 0) as total_share
    from {{ ref('cap_top_10') }}

    union all

    select
        'vol_top_10' as mart,
        count(*) as n_rows,
        count(distinct snapshot_at) as n_snapshots,
        max(snapshot_at) as snapshot_at,
        coalesce(sum(share_of_top_10), 0) as total_share
    from {{ ref('vol_top_10') }}

),

compared as (

    select
        actual.*,
        case actual.mart when 'cap_top_10' then expected.cap_rows else expected.vol_rows end
            as expected_rows,
        expected.snapshot_at as expected_snapshot_at
    from actual
    cross join expected

),

final as (

    select * from compared
    where n_rows <> expected_rows
        or n_snapshots > 1
        or snapshot_at is distinct from expected_snapshot_at
        or (n_rows > 0 and abs(total_share - 1) > 1e-9)

)

select * from final
