{{ config(materialized='view') }}

{#
    A view: the reconciliation DAG updates raw.reconciliation after dbt has run, and the page
    must see its verdict at once. Small: one row per coin per hourly run.
#}

with

samples as (

    select * from {{ ref('stg_reconciliation') }}

),

runs as (

    select
        run_id,
        source,
        bool_or(is_simulated) as is_simulated,
        min(sampled_at) as sampled_at,
        max(checked_at) as checked_at,
        count(*) as samples,
        count(*) filter (where status = 'matched') as matched,
        count(*) filter (where status = 'mismatched') as mismatched,
        count(*) filter (where status = 'superseded') as superseded,
        count(*) filter (where status = 'not_loaded') as not_loaded,
        count(*) filter (where status = 'pending') as pending,
        string_agg(
            case when status = 'mismatched' then symbol || ' (' || coin_id || ')' end,
            ', ' order by coin_id
        ) as mismatched_coins

    from samples
    group by run_id, source

),

final as (

    select
        *,
        case
            when mismatched + not_loaded > 0 then 'error'
            when pending > 0 then 'pending'
            else 'ok'
        end as status,
        row_number() over (partition by source order by sampled_at desc) = 1 as is_latest

    from runs

)

select * from final
