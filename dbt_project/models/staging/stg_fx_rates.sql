with

source as (

    select * from {{ source('raw', 'fx_rates') }}

),

renamed as (

    select
        ----------  ids
        as_of_date,
        currency,

        ---------- text
        source,

        ---------- numerics
        rate_per_usd::double precision as rate_per_usd,

        ---------- booleans
        source = 'simulator' as is_simulated,

        ---------- timestamps
        loaded_at

    from source

)

-- No `select distinct`: raw.fx_rates has primary key (as_of_date, currency),
-- so its rows are already unique. A plain view lets filters and max() on it use the
-- raw table's indexes; the DISTINCT view it replaces scanned and sorted all history.
select * from renamed
