with

fx_rates as (

    select * from {{ ref('stg_fx_rates') }}

),

dates as (

    select distinct as_of_date from fx_rates

),

usd as (

    -- USD is the base: one USD per USD on every date the other rates exist for.
    select
        dates.as_of_date,
        'USD' as currency,
        1::double precision as rate_per_usd

    from dates
    where not exists (
        select 1
        from fx_rates
        where fx_rates.as_of_date = dates.as_of_date
            and fx_rates.currency = 'USD'
    )

),

all_rates as (

    select as_of_date, currency, rate_per_usd from fx_rates
    union all
    select as_of_date, currency, rate_per_usd from usd

),

final as (

    select
        as_of_date,
        currency,
        rate_per_usd,
        as_of_date = max(as_of_date) over (partition by currency) as is_latest

    from all_rates

)

select * from final
