-- Alerts (moonwatch.alerts, DAG crypto_alerts).
--
-- raw.alert_rules: the coin rules as last synced from dbt_project/alerts.yml and the Airflow
-- Variable moonwatch_alert_rules, one row per rule per coin. The dbt view
-- marts.alert_conditions joins them to the quote marts; every sync replaces the whole table
-- in one transaction, so the view never sees half a rule set.
create table if not exists raw.alert_rules (
    rule_id         text              not null,
    kind            text              not null
        check (kind in ('price_cross', 'price_move', 'stale')),
    coin_id         integer           not null,
    quote_currency  text              not null,
    -- price_cross: 'above' | 'below'; price_move: 'up' | 'down' | 'any'; stale: null.
    direction       text,
    level           double precision,
    percent         double precision,
    minutes         integer,
    description     text,
    synced_at       timestamptz       not null default clock_timestamp(),
    primary key (rule_id, coin_id, quote_currency)
);

-- raw.alert_events: one row per alert event, from the moment its condition starts (opened_at)
-- to the moment it ends (resolved_at), with when each notification went out. The partial
-- unique index allows one OPEN event per rule and subject: a condition that holds for many
-- evaluations inserts once, so it is sent once; it is sent again only after it resolved and
-- started again. A notification not yet sent (*_sent_at null) is retried by the next run.
create table if not exists raw.alert_events (
    event_id        bigint generated always as identity primary key,
    rule_id         text              not null,
    kind            text              not null
        check (kind in ('price_cross', 'price_move', 'stale', 'dag_failure')),
    -- What the event is about: '<source>:<coin_id>:<currency>' for a coin rule, the DAG id
    -- for a DAG failure.
    subject         text              not null,
    source          text,
    coin_id         integer,
    symbol          text,
    coin_name       text,
    quote_currency  text,
    dag_id          text,
    opened_at       timestamptz       not null default clock_timestamp(),
    open_value      double precision,
    open_message    text              not null,
    open_sent_at    timestamptz,
    resolved_at     timestamptz,
    resolve_value   double precision,
    resolve_message text,
    resolve_sent_at timestamptz,
    -- Why the last delivery attempt failed (never the destination URL).
    last_error      text,
    -- DAG failures: failed tasks seen while open, and the DAG's successful run count when it
    -- opened (a later success resolves it).
    repeat_count    integer           not null default 0,
    successful_runs_at_open integer,
    detail          jsonb
);
create unique index if not exists alert_events_one_open_idx
    on raw.alert_events (rule_id, subject) where resolved_at is null;
create index if not exists alert_events_opened_at_idx on raw.alert_events (opened_at);
create index if not exists alert_events_unsent_idx on raw.alert_events (event_id)
    where open_sent_at is null or (resolved_at is not null and resolve_sent_at is null);
