-- Reconciliation samples: what the source said about a coin-minute, and what the marts held.
-- Written by the crypto_reconcile DAG (moonwatch.reconcile); one row per coin per sample run.
create table if not exists raw.reconciliation (
    reconciliation_id  bigint generated always as identity primary key,
    run_id             text         not null,
    source             text         not null,
    coin_id            integer      not null,
    symbol             text         not null,
    quote_currency     text         not null,
    last_updated       timestamptz  not null,
    source_price       double precision,
    source_market_cap  double precision,
    source_volume_24h  double precision,
    sampled_at         timestamptz  not null default clock_timestamp(),
    status             text         not null default 'pending'
        check (status in ('pending', 'matched', 'mismatched', 'superseded', 'not_loaded')),
    mart_price         double precision,
    differing_fields   text[],
    checked_at         timestamptz
);
create index if not exists reconciliation_run_idx on raw.reconciliation (run_id, status);
create index if not exists reconciliation_sampled_at_idx on raw.reconciliation (sampled_at);
