{#
    For each source, each top-10 mart holds one listings snapshot of its ranking (market_cap
    for cap_top_10, volume_24h for vol_top_10), all of it: exactly min(10, coins with a value)
    rows, shares summing to 1. And that snapshot is not older than the newest one the build
    was sure to see: every listings row stamped before the safe point its pre-hook recorded
    (record_safe_point) was committed when the mart's query ran. A snapshot loaded during or
    after the build (the listings DAG runs beside the reference build) may or may not be in
    it, and is no error. A mart without a recorded point is held to the newest snapshot.
    Returns one row per broken mart and source.
#}

{% set marts = [('cap_top_10', 'market_cap'), ('vol_top_10', 'volume_24h')] %}

with

-- Not materialized: referenced several times, and a materialized CTE would copy every
-- snapshot ever loaded; inlined, the filters use raw.crypto_listings' primary key.
listings as not materialized (

    select * from {{ ref('stg_crypto_listings') }}

),

-- Per source and ranking: the newest snapshot the mart of that ranking surely saw (null:
-- none), from the safe point its build recorded ('infinity' without one).
{%- set safe_points = {} %}
{%- for mart, ranked_by in marts %}
{%- do safe_points.update({ranked_by: "coalesce((select safe_from from "
    ~ incremental_state_relation() ~ " where model_name = '" ~ ref(mart) ~ "'), 'infinity')"}) %}
{%- endfor %}
{{ latest_listings_snapshots('listings', name='due', loaded_before=safe_points) }}

-- Per mart and source: what it holds.
held as (

    {% for mart, ranked_by in marts %}
    select
        '{{ mart }}'::text as mart,
        '{{ ranked_by }}'::text as ranked_by,
        source,
        count(*) as n_rows,
        count(distinct snapshot_at) as n_snapshots,
        max(snapshot_at) as snapshot_at,
        coalesce(sum(share_of_top_10), 0) as total_share
    from {{ ref(mart) }}
    group by source
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

-- How many rows a snapshot owes the mart of its ranking: its coins with a value, at most
-- ten; for the snapshot each mart holds, and for the one its build surely saw.
owed as (

    select
        wanted.ranked_by,
        wanted.source,
        wanted.snapshot_at,
        least(10, count(
            case wanted.ranked_by
                when 'market_cap' then listings.market_cap
                else listings.volume_24h
            end
        )) as expected_rows
    from (
        select ranked_by, source, snapshot_at from held
        union
        select ranked_by, source, snapshot_at from due where snapshot_at is not null
    ) as wanted
    left join listings
        on listings.source = wanted.source
        and listings.ranked_by = wanted.ranked_by
        and listings.snapshot_at = wanted.snapshot_at
    group by wanted.ranked_by, wanted.source, wanted.snapshot_at

),

final as (

    select
        held.mart,
        coalesce(held.ranked_by, due.ranked_by) as ranked_by,
        coalesce(held.source, due.source) as source,
        held.n_rows,
        held.n_snapshots,
        held.snapshot_at,
        held.total_share,
        owed_held.expected_rows,
        due.snapshot_at as due_snapshot_at,
        owed_due.expected_rows as due_rows
    from held
    full outer join due
        on due.ranked_by = held.ranked_by and due.source = held.source
    left join owed as owed_held
        on owed_held.ranked_by = held.ranked_by
        and owed_held.source = held.source
        and owed_held.snapshot_at = held.snapshot_at
    left join owed as owed_due
        on owed_due.ranked_by = due.ranked_by
        and owed_due.source = due.source
        and owed_due.snapshot_at = due.snapshot_at
    where
        -- the snapshot it holds: all of it, alone, shares summing to 1
        held.n_rows <> owed_held.expected_rows
        or held.n_snapshots > 1
        or abs(held.total_share - 1) > 1e-9
        -- older than a snapshot the build surely saw
        or held.snapshot_at < due.snapshot_at
        -- nothing, where the snapshot the build surely saw has coins to rank
        or (held.source is null and owed_due.expected_rows > 0)

)

select * from final
