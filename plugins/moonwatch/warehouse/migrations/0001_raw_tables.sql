-- Raw layer: data as received, plus where it came from and when it was loaded.
create schema if not exists raw;

-- One row per (coin, quote currency, source update). The message is kept whole as JSONB;
-- the typed columns are the natural key and what incremental dbt models filter on.
create table if not exists raw.crypto_quotes (
    coin_id          integer      not null,
    quote_currency   text         not null,
    last_updated     timestamptz  not null,
    message          jsonb        not null,
    kafka_topic      text         not null,
    kafka_partition  integer      not null,
    kafka_offset     bigint       not null,
    loaded_at        timestamptz  not null default clock_timestamp(),
    primary key (coin_id, quote_currency, last_updated)
);
create index if not exists crypto_quotes_loaded_at_idx on raw.crypto_quotes (loaded_at);

-- Messages the loader could not accept, kept byte for byte (base64) with the reason.
create table if not exists raw.crypto_quotes_rejected (
    rejected_id      bigint generated always as identity primary key,
    kafka_topic      text         not null,
    kafka_partition  integer      not null,
    kafka_offset     bigint       not null,
    message_key      text,
    message_base64   text,
    reason           text         not null,
    rejected_at      timestamptz  not null default clock_timestamp(),
    unique (kafka_topic, kafka_partition, kafka_offset)
);
create index if not exists crypto_quotes_rejected_at_idx on raw.crypto_quotes_rejected (rejected_at);

-- One row per coin per listings snapshot.
create table if not exists raw.crypto_listings (
    snapshot_at      timestamptz  not null,
    coin_id          integer      not null,
    quote_currency   text         not null,
    source           text         not null,
    coin             jsonb        not null,
    loaded_at        timestamptz  not null default clock_timestamp(),
    primary key (snapshot_at, coin_id)
);
create index if not exists crypto_listings_loaded_at_idx on raw.crypto_listings (loaded_at);

-- Daily reference rates: units of `currency` per one USD.
create table if not exists raw.fx_rates (
    as_of_date       date         not null,
    currency         text         not null,
    rate_per_usd     numeric      not null check (rate_per_usd > 0),
    source           text         not null,
    loaded_at        timestamptz  not null default clock_timestamp(),
    primary key (as_of_date, currency)
);
