{{ config(materialized='view') }}

{#
    One row per source: how often the producer and the listings snapshot call CoinMarketCap
    now (paced so the month's MOONWATCH_CMC_MONTHLY_CREDITS last until the 1st), and the
    month's credits used and left. A view over the producer's newest decision, so it is
    current whenever the dashboard reads it (the decision itself is at most a minute old).
#}

with

pace as (

    select * from {{ source('credits', 'cmc_credit_pace') }}

),

final as (

    select
        source,
        source = 'simulator' as is_simulated,
        month,
        budget as credits_budget,
        spent as credits_used,
        greatest(budget - spent, 0) as credits_left,
        quotes_every_minutes,
        listings_every_minutes,
        quotes_every_minutes is null as is_paused,
        last_quotes_call_at,
        decided_at,
        summary

    from pace

)

select * from final
