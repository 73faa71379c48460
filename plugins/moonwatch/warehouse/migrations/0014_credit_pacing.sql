-- Credit pacing (moonwatch.sources.credits.pace, moonwatch.warehouse.credits).
--
-- raw.cmc_credit_calls: one row per paid API call (quotes, listings, reconciliation, history),
-- with the credits its answer said it cost. A schedule's next turn is counted from its last
-- call, and the simulator's calls are counted here too (it is free, but counting them is what
-- makes pacing visible and testable offline). Real spend is still enforced through
-- raw.cmc_credit_ledger.
create table if not exists raw.cmc_credit_calls (
    called_at   timestamptz  not null,
    job         text         not null check (job ~ '^[a-z_]{1,40}$'),
    source      text         not null check (source in ('simulator', 'coinmarketcap')),
    credits     integer      not null check (credits >= 0),
    primary key (source, job, called_at)
);
create index if not exists cmc_credit_calls_month
    on raw.cmc_credit_calls (source, called_at);

-- raw.cmc_credit_pace: the producer's newest pacing decision per source (one row each,
-- replaced every minute): the effective cadences and the month's credits, for `make status`
-- and, through marts.credit_budget, the dashboard.
create table if not exists raw.cmc_credit_pace (
    source                  text         primary key
        check (source in ('simulator', 'coinmarketcap')),
    decided_at              timestamptz  not null,
    month                   text         not null check (month ~ '^[0-9]{4}-[0-9]{2}$'),
    budget                  integer      not null check (budget >= 0),
    spent                   integer      not null check (spent >= 0),
    minutes_left            integer      not null check (minutes_left >= 0),
    -- null: not one more call fits before the month ends; calls resume on the 1st.
    quotes_every_minutes    integer      check (quotes_every_minutes >= 1),
    listings_every_minutes  integer      check (listings_every_minutes >= 1),
    last_quotes_call_at     timestamptz,
    summary                 text         not null
);
