{#
    The per-build tests on quotes_coins and coin_price_hourly look only at recently loaded
    rows (their `where`, var recent_test_window), so a row loaded while the transform was
    down longer than that window would never meet them. This audit test applies the same
    row rules to ALL history, one pass over each table. Returns one row per broken row.

    Tagged `audit`: runs daily in crypto_marts_audit, not in the per-minute build.
#}

{{ config(tags=['audit']) }}

with

quotes as (

    select
        'quotes_coins' as model,
        quote_key as row_key,
        coalesce(
            {{ quote_row_problem() }},
            case when is_simulated is null then 'is_simulated is null' end
        ) as problem
    from {{ ref('quotes_coins') }}

),

hourly as (

    select
        'coin_price_hourly' as model,
        source || '|' || coin_id::text || '|' || quote_currency || '|' || hour_at::text
            as row_key,
        case
            when source is null then 'source is null'
            when coin_id is null then 'coin_id is null'
            when quote_currency is null then 'quote_currency is null'
            when hour_at is null then 'hour_at is null'
            when open_price is null then 'open_price is null'
            when close_price is null then 'close_price is null'
            when open_price <= 0 or close_price <= 0 or high_price <= 0 or low_price <= 0
                then 'a price <= 0'
        end as problem
    from {{ ref('coin_price_hourly') }}

),

final as (

    select * from quotes where problem is not null
    union all
    select * from hourly where problem is not null

)

select * from final
