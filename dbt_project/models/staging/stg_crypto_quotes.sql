with

source as (

    select * from {{ source('raw', 'crypto_quotes') }}

),

renamed as (

    select
        ----------  ids
        coin_id,
        quote_currency,
        (message ->> 'schema_version')::integer as schema_version,

        ---------- text
        -- 'coinmarketcap' or 'simulator', part of every key downstream. Read from the message,
        -- which works before and after raw.crypto_quotes gets its own typed source column.
        message ->> 'source' as source,
        message ->> 'symbol' as symbol,
        message ->> 'name' as name,
        message ->> 'slug' as slug,

        ---------- numerics
        (message ->> 'cmc_rank')::integer as cmc_rank,
        (message ->> 'num_market_pairs')::integer as num_market_pairs,
        (message ->> 'circulating_supply')::double precision as circulating_supply,
        (message ->> 'total_supply')::double precision as total_supply,
        (message ->> 'max_supply')::double precision as max_supply,
        (message ->> 'price')::double precision as price,
        (message ->> 'volume_24h')::double precision as volume_24h,
        (message ->> 'volume_change_24h')::double precision as volume_change_24h,
        (message ->> 'percent_change_1h')::double precision as percent_change_1h,
        (message ->> 'percent_change_24h')::double precision as percent_change_24h,
        (message ->> 'percent_change_7d')::double precision as percent_change_7d,
        (message ->> 'percent_change_30d')::double precision as percent_change_30d,
        (message ->> 'market_cap')::double precision as market_cap,
        (message ->> 'market_cap_dominance')::double precision as market_cap_dominance,
        (message ->> 'fully_diluted_market_cap')::double precision as fully_diluted_market_cap,

        ---------- booleans
        (message ->> 'source') = 'simulator' as is_simulated,
        (message ->> 'infinite_supply')::boolean as is_infinite_supply,

        ---------- timestamps
        last_updated as last_updated_at,
        (message ->> 'fetched_at')::timestamptz as fetched_at,
        loaded_at,

        ---------- lineage
        kafka_topic,
        kafka_partition,
        kafka_offset

    from source

),

validated as (

    select
        *,
        {{ quote_row_problem() }} as invalid_reason

    from renamed

)

-- No `select distinct`: raw.crypto_quotes' primary key makes its rows unique. A plain view
-- lets filters and max() on it use the raw table's indexes; the DISTINCT view it replaces
-- scanned and sorted all history.
select * from validated
