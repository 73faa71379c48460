-- CoinMarketCap credits spent per UTC calendar month, shared by every producer run.
create table if not exists raw.cmc_credit_ledger (
    month        text         primary key check (month ~ '^[0-9]{4}-[0-9]{2}$'),
    credits      integer      not null default 0 check (credits >= 0),
    updated_at   timestamptz  not null default now()
);
