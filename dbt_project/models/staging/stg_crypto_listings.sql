with

source as (

    select * from {{ source('raw', 'crypto_listings') }}

),

renamed as (

    select
        ----------  ids
        coin_id,
        quote_currency,

        ---------- text
        source,
        ranked_by,
        coin ->> 'symbol' as symbol,
        coin ->> 'name' as name,
        coin ->> 'slug' as slug,
        coin -> 'platform' ->> 'name' as platform_name,
        coin -> 'platform' ->> 'token_address' as platform_token_address,
        coin -> 'tags' as tags,

        ---------- numerics
        (coin ->> 'cmc_rank')::integer as cmc_rank,
        (coin ->> 'num_market_pairs')::integer as num_market_pairs,
        (coin ->> 'circulating_supply')::double precision as circulating_supply,
        (coin ->> 'total_supply')::double precision as total_supply,
        (coin ->> 'max_supply')::double precision as max_supply,
        (coin -> 'quote' -> quote_currency ->> 'price')::double precision as price,
        (coin -> 'quote' -> quote_currency ->> 'volume_24h')::double precision as volume_24h,
        (coin -> 'quote' -> quote_currency ->> 'volume_change_24h')::double precision
            as volume_change_24h,
        (coin -> 'quote' -> quote_currency ->> 'percent_change_1h')::double precision
            as percent_change_1h,
        (coin -> 'quote' -> quote_currency ->> 'percent_change_24h')::double precision
            as percent_change_24h,
        (coin -> 'quote' -> quote_currency ->> 'percent_change_7d')::double precision
            as percent_change_7d,
        (coin -> 'quote' -> quote_currency ->> 'percent_change_30d')::double precision
            as percent_change_30d,
        (coin -> 'quote' -> quote_currency ->> 'market_cap')::double precision as market_cap,
        (coin -> 'quote' -> quote_currency ->> 'market_cap_dominance')::double precision
            as market_cap_dominance,
        (coin -> 'quote' -> quote_currency ->> 'fully_diluted_market_cap')::double precision
            as fully_diluted_market_cap,

        ---------- booleans
        source = 'simulator' as is_simulated,
        (coin ->> 'infinite_supply')::boolean as is_infinite_supply,

        ---------- timestamps
        snapshot_at,
        (coin ->> 'date_added')::timestamptz as date_added_at,
        (coin ->> 'last_updated')::timestamptz as coin_last_updated_at,
        (coin -> 'quote' -> quote_currency ->> 'last_updated')::timestamptz
            as quote_last_updated_at,
        loaded_at

    from source

)

-- No `select distinct`: raw.crypto_listings has primary key
-- (source, ranked_by, snapshot_at, coin_id), so its rows are already unique. A plain view lets filters and max() on it use the
-- raw table's indexes; the DISTINCT view it replaces scanned and sorted all history.
select * from renamed
