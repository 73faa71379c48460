{{ config(materialized='view') }}

{#
    One row per coin alert rule (raw.alert_rules), source, coin and quote currency: whether the
    rule's condition holds now, and the value it is judged on. A view, so it is current when
    queried (the stale rule compares with now()); crypto_alerts reads it every minute and turns
    changes of is_active into events (plugins/moonwatch/alerts.py).

    - price_cross: the latest price is at or above (below) the level.
    - price_move:  the latest price against the lowest (up) / highest (down) price in the
      `minutes` before the latest quote; observed_value is that change in percent.
    - stale:       the latest quote (last_updated_at) is more than `minutes` old.

    Each source is judged on its own rows: a simulated quote never stands in for a real one.
    Only the source being fetched now (the newest fetched_at) is judged: after a switch to a
    real key, the simulator's frozen rows are not "stale" for ever. A coin with no quote in
    the rule's currency has no row (nothing to judge).
#}

with

rules as (

    select * from {{ source('alerts', 'alert_rules') }}

),

latest as (

    select
        source,
        coin_id,
        quote_currency,
        symbol,
        name as coin_name,
        is_simulated,
        price,
        last_updated_at,
        fetched_at

    from {{ ref('latest_quotes') }}

),

current_source as (

    -- fetched_at is the producer's own stamp (never in the future): the source's
    -- last_updated could be.
    select source
    from latest
    order by fetched_at desc nulls last
    limit 1

),

clock as (

    -- var alerts_as_of pins "now" (unit tests); unset, the view reads the clock.
    select
        {% if var('alerts_as_of', none) -%}
        '{{ var("alerts_as_of") }}'::timestamptz
        {%- else -%}
        now()
        {%- endif %} as evaluated_at

),

targets as (

    select
        rules.rule_id,
        rules.kind,
        latest.source,
        rules.coin_id,
        rules.quote_currency,
        latest.symbol,
        latest.coin_name,
        latest.is_simulated,
        rules.direction,
        rules.level,
        rules.percent,
        rules.minutes,
        rules.description,
        latest.price,
        latest.last_updated_at,
        clock.evaluated_at

    from rules
    inner join latest
        on latest.coin_id = rules.coin_id
        and latest.quote_currency = rules.quote_currency
    inner join current_source
        on current_source.source = latest.source
    cross join clock

),

move_windows as (

    -- Reads quotes_coins through its (source, coin_id, quote_currency, last_updated_at)
    -- index: a few rows per rule and coin, whatever the history.
    select
        targets.rule_id,
        targets.source,
        targets.coin_id,
        targets.quote_currency,
        min(quotes.price) as window_low,
        max(quotes.price) as window_high

    from targets
    inner join {{ ref('quotes_coins') }} as quotes
        on quotes.source = targets.source
        and quotes.coin_id = targets.coin_id
        and quotes.quote_currency = targets.quote_currency
        and quotes.last_updated_at >= targets.last_updated_at - make_interval(mins => targets.minutes)
        and quotes.last_updated_at <= targets.last_updated_at
    where targets.kind = 'price_move'
    group by 1, 2, 3, 4

),

moves as (

    select
        targets.*,
        move_windows.window_low,
        move_windows.window_high,
        100 * (targets.price / nullif(move_windows.window_low, 0) - 1) as rise_pct,
        100 * (targets.price / nullif(move_windows.window_high, 0) - 1) as fall_pct

    from targets
    left join move_windows
        on move_windows.rule_id = targets.rule_id
        and move_windows.source = targets.source
        and move_windows.coin_id = targets.coin_id
        and move_windows.quote_currency = targets.quote_currency

),

judged as (

    select
        *,
        -- 'any' takes the larger of the rise and the fall.
        case
            when direction = 'up' then 'up'
            when direction = 'down' then 'down'
            when abs(coalesce(rise_pct, 0)) >= abs(coalesce(fall_pct, 0)) then 'up'
            else 'down'
        end as move_side

    from moves

),

final as (

    select
        rule_id,
        kind,
        source,
        coin_id,
        quote_currency,
        symbol,
        coin_name,
        is_simulated,
        direction,
        level,
        percent,
        minutes,
        description,
        price,
        case
            when kind = 'price_move' and move_side = 'up' then window_low
            when kind = 'price_move' then window_high
        end as reference_price,
        last_updated_at,
        evaluated_at,
        case kind
            when 'price_cross' then price
            when 'price_move' then case when move_side = 'up' then rise_pct else fall_pct end
            when 'stale' then extract(epoch from evaluated_at - last_updated_at) / 60.0
        end::double precision as observed_value,
        coalesce(
            case kind
                when 'price_cross' then
                    case direction when 'above' then price >= level else price <= level end
                when 'price_move' then
                    case move_side
                        when 'up' then rise_pct >= percent
                        else -fall_pct >= percent
                    end
                when 'stale' then last_updated_at < evaluated_at - make_interval(mins => minutes)
            end,
            false
        ) as is_active

    from judged

)

select * from final
