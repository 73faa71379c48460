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

),

deduplicated as (

    select distinct * from renamed

)

select * from deduplicated
