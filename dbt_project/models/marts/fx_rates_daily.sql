with

-- One rate per date and currency: the real provider's where it has one, the simulator's only
-- for the dates it has not (e.g. before the switch to a real key, where the quotes are
-- simulated too). A simulated rate never stands in for a real one of the same date.
fx_rates as (

    select distinct on (as_of_date, currency)
        as_of_date,
        currency,
        source,
        rate_per_usd

    from {{ ref('stg_fx_rates') }}
    order by as_of_date, currency, (source = 'simulator'), source

),

dates as (

    select distinct as_of_date from fx_rates

),

usd as (

    -- USD is the base: one USD per USD on every date the other rates exist for.
    select
        dates.as_of_date,
        'USD' as currency,
        'definition' as source,
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

    select as_of_date, currency, source, rate_per_usd from fx_rates
    union all
    select as_of_date, currency, source, rate_per_usd from usd

),

final as (

    select
        as_of_date,
        currency,
        rate_per_usd,
        source,
        as_of_date = max(as_of_date) over (partition by currency) as is_latest

    from all_rates

)

select * from final
