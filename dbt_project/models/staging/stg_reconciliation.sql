with

source as (

    select * from {{ source('raw', 'reconciliation') }}

),

renamed as (

    select
        ----------  ids
        reconciliation_id,
        run_id,
        coin_id,

        ---------- text
        source,
        symbol,
        quote_currency,
        status,
        differing_fields,

        ---------- numerics
        source_price,
        mart_price,

        ---------- booleans
        source = 'simulator' as is_simulated,

        ---------- timestamps
        last_updated as last_updated_at,
        sampled_at,
        checked_at

    from source

)

select * from renamed
