{#
    The incremental quotes_coins equals a full recomputation from staging (the rows without
    an invalid_reason): no row missing (e.g. a late commit the watermark skipped), none
    extra, none stale. Returns the differences.

    Scans all history twice: tagged `audit`, so it runs in the daily crypto_marts_audit DAG,
    not in the per-minute build.
#}

{{ config(tags=['audit']) }}

with

incremental as (

    select
        quote_key, coin_id, quote_currency, last_updated_at, source, price, market_cap,
        volume_24h, loaded_at
    from {{ ref('quotes_coins') }}

),

full_refresh as (

    select
        md5(
            source || '|' || coin_id::text || '|' || quote_currency || '|'
            || to_char(last_updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        ) as quote_key,
        coin_id, quote_currency, last_updated_at, source, price, market_cap, volume_24h,
        loaded_at
    from {{ ref('stg_crypto_quotes') }}
    where invalid_reason is null

),

missing as (

    select 'missing from quotes_coins' as problem, * from (
        select * from full_refresh
        except
        select * from incremental
    ) as m

),

extra as (

    select 'not in a full refresh' as problem, * from (
        select * from incremental
        except
        select * from full_refresh
    ) as e

)

select * from missing
union all
select * from extra
