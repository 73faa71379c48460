{{ config(materialized='view') }}

{#
    A view, so it is current whenever the dashboard asks. It reads the raw tables directly
    (their loaded_at / rejected_at indexes answer these in milliseconds) and runs with its
    owner's rights, so the read-only dashboard role needs no access to raw.
#}

with

quotes as (

    select
        'crypto_quotes' as source_name,
        (select max(loaded_at) from {{ source('raw', 'crypto_quotes') }}) as last_loaded_at,
        (
            select count(*)
            from {{ source('raw', 'crypto_quotes') }}
            where loaded_at >= now() - interval '1 hour'
        ) as rows_last_hour,
        (
            select count(*)
            from {{ source('raw', 'crypto_quotes_rejected') }}
            where rejected_at >= now() - interval '1 hour'
        ) as rejected_last_hour

),

listings as (

    select
        'crypto_listings' as source_name,
        (select max(loaded_at) from {{ source('raw', 'crypto_listings') }}) as last_loaded_at,
        (
            select count(*)
            from {{ source('raw', 'crypto_listings') }}
            where loaded_at >= now() - interval '1 hour'
        ) as rows_last_hour,
        0::bigint as rejected_last_hour

),

fx_rates as (

    select
        'fx_rates' as source_name,
        (select max(loaded_at) from {{ source('raw', 'fx_rates') }}) as last_loaded_at,
        (
            select count(*)
            from {{ source('raw', 'fx_rates') }}
            where loaded_at >= now() - interval '1 hour'
        ) as rows_last_hour,
        0::bigint as rejected_last_hour

),

final as (

    select * from quotes
    union all
    select * from listings
    union all
    select * from fx_rates

)

select * from final
