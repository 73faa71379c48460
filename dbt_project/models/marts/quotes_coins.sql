{{
    config(
        materialized='incremental',
        unique_key='quote_key',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['quote_key'], 'unique': true},
            {'columns': ['coin_id', 'quote_currency', 'last_updated_at']},
            {'columns': ['loaded_at']},
        ]
    )
}}

with

quotes as (

    select * from {{ ref('stg_crypto_quotes') }}

    {% if is_incremental() %}
    -- Only raw rows loaded since the last run, minus a lookback for late commits; the
    -- unique key makes re-reading a row harmless.
    where loaded_at > (
        select coalesce(max(loaded_at), '-infinity'::timestamptz)
            - interval '{{ var("incremental_lookback") }}'
        from {{ this }}
    )
    {% endif %}

),

keyed as (

    select
        md5(
            coin_id::text || '|' || quote_currency || '|'
            || to_char(last_updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        ) as quote_key,
        coin_id,
        symbol,
        name,
        slug,
        quote_currency,
        source,
        is_simulated,
        cmc_rank,
        price,
        volume_24h,
        volume_change_24h,
        percent_change_1h,
        percent_change_24h,
        percent_change_7d,
        percent_change_30d,
        market_cap,
        market_cap_dominance,
        fully_diluted_market_cap,
        circulating_supply,
        total_supply,
        max_supply,
        last_updated_at,
        fetched_at,
        loaded_at

    from quotes

),

final as (

    select * from keyed

)

select * from final
