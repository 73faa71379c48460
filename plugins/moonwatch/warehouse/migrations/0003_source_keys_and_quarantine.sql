-- Simulated and real data never share a key, nothing rejected is lost, and listings and FX
-- rates that fail validation are quarantined instead of stored (or silently skipped).
-- Every statement is safe to run twice.

-- Quotes: `source` ('coinmarketcap' | 'simulator') as a typed column, part of the natural key,
-- so a simulated and a real quote for the same coin and minute are two rows, not one that
-- silently wins. Generated from the message itself (backfilling every existing row), so the
-- column can never disagree with what was received.
alter table raw.crypto_quotes
    add column if not exists source text generated always as (message ->> 'source') stored;
alter table raw.crypto_quotes alter column source set not null;
do $$
begin
    if not exists (select 1 from pg_constraint
                   where conname = 'crypto_quotes_source_check'
                     and conrelid = 'raw.crypto_quotes'::regclass) then
        alter table raw.crypto_quotes add constraint crypto_quotes_source_check
            check (source in ('coinmarketcap', 'simulator'));
    end if;
end $$;

-- Makes `source` the first column of a table's primary key, once.
create or replace function pg_temp.key_by_source(tbl regclass, pkey text, columns text) returns void
language plpgsql as $$
begin
    if not exists (select 1 from pg_index i join pg_attribute a
                     on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
                   where i.indrelid = tbl and i.indisprimary and a.attname = 'source') then
        execute format('alter table %s drop constraint if exists %I', tbl, pkey);
        execute format('alter table %s add constraint %I primary key (%s)', tbl, pkey, columns);
    end if;
end $$;

select pg_temp.key_by_source(
    'raw.crypto_quotes', 'crypto_quotes_pkey', 'source, coin_id, quote_currency, last_updated'
);
-- Listings: a simulated and a real snapshot taken at the same second are two snapshots.
select pg_temp.key_by_source(
    'raw.crypto_listings', 'crypto_listings_pkey', 'source, snapshot_at, coin_id'
);
-- FX rates: the simulator's rates for a day never overwrite Frankfurter's (or the reverse).
select pg_temp.key_by_source('raw.fx_rates', 'fx_rates_pkey', 'source, as_of_date, currency');
drop function pg_temp.key_by_source(regclass, text, text);

-- Rejected quotes: unique per (topic, partition, offset) dropped a NEW bad message that a
-- restarted broker (the local one starts its offsets at 0 again) put at an offset already
-- used. Unique per offset AND content instead: a re-read of the same message (a crash between
-- the Postgres and the Kafka commit) is still stored once, a different one is kept.
-- `message_bytes` is the value's full length (the stored payload may be only its start).
alter table raw.crypto_quotes_rejected add column if not exists message_bytes bigint;
-- Rows stored before this kept whole values: their length is what a re-read would record, so a
-- redelivered message still matches its row below.
update raw.crypto_quotes_rejected
set message_bytes = length(decode(message_base64, 'base64'))
where message_bytes is null and message_base64 is not null;
alter table raw.crypto_quotes_rejected
    add column if not exists content_sha256 bytea generated always as (
        sha256(
            decode(md5(coalesce(message_key, '') || '|' || coalesce(message_bytes::text, '')), 'hex')
            || coalesce(decode(message_base64, 'base64'), '\x'::bytea)
        )
    ) stored;
do $$
declare
    name text;
begin
    for name in
        select conname from pg_constraint
        where conrelid = 'raw.crypto_quotes_rejected'::regclass and contype = 'u'
          and cardinality(conkey) = 3
    loop
        execute format('alter table raw.crypto_quotes_rejected drop constraint %I', name);
    end loop;
end $$;
create unique index if not exists crypto_quotes_rejected_offset_content_key
    on raw.crypto_quotes_rejected (kafka_topic, kafka_partition, kafka_offset, content_sha256);

-- Listings coins that fail validation: kept with the reason, never stored in crypto_listings
-- (where one bad cast would stop the reference marts) and never silently dropped.
create table if not exists raw.crypto_listings_rejected (
    rejected_id      bigint generated always as identity primary key,
    source           text         not null,
    snapshot_at      timestamptz  not null,
    quote_currency   text         not null,
    coin_id          text,
    payload          text         not null,
    reason           text         not null,
    rejected_at      timestamptz  not null default clock_timestamp()
);
create index if not exists crypto_listings_rejected_at_idx
    on raw.crypto_listings_rejected (rejected_at);

-- FX rates that fail validation, likewise.
create table if not exists raw.fx_rates_rejected (
    rejected_id      bigint generated always as identity primary key,
    source           text         not null,
    as_of_date       text,
    currency         text,
    payload          text         not null,
    reason           text         not null,
    rejected_at      timestamptz  not null default clock_timestamp()
);
create index if not exists fx_rates_rejected_at_idx on raw.fx_rates_rejected (rejected_at);
