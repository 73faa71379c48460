{{ config(materialized='view') }}

{#
    One row per alert event, for the dashboard (which reads marts only): what happened, when
    it started and ended, and whether each notification went out. A view over
    raw.alert_events, so the newest events show as soon as crypto_alerts records them.
#}

with

events as (

    select * from {{ source('alerts', 'alert_events') }}

),

final as (

    select
        event_id,
        rule_id,
        kind,
        subject,
        source,
        coin_id,
        symbol,
        coin_name,
        quote_currency,
        dag_id,
        case when resolved_at is null then 'open' else 'resolved' end as status,
        coalesce(source = 'simulator', false) as is_simulated,
        coalesce(detail ->> 'title', split_part(open_message, E'\n', 1)) as title,
        opened_at,
        open_value,
        open_message,
        open_sent_at,
        resolved_at,
        resolve_value,
        resolve_message,
        resolve_sent_at,
        last_error as delivery_error,
        repeat_count,
        greatest(opened_at, resolved_at) as last_change_at

    from events

)

select * from final
