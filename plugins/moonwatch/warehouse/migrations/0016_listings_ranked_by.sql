-- Listings snapshots say what they are ranked by: the market-cap listing (top N by market cap)
-- and the volume listing (the market's top coins by 24h volume, CoinMarketCap's own
-- sort=volume_24h). Ranking volume inside the market-cap top 200 missed coins that trade a lot
-- but are small. Existing rows were all market-cap listings. Safe to run twice.
alter table raw.crypto_listings
    add column if not exists ranked_by text not null default 'market_cap';
do $$
begin
    if not exists (select 1 from pg_constraint
                   where conname = 'crypto_listings_ranked_by_check'
                     and conrelid = 'raw.crypto_listings'::regclass) then
        alter table raw.crypto_listings add constraint crypto_listings_ranked_by_check
            check (ranked_by in ('market_cap', 'volume_24h'));
    end if;
    if not exists (select 1 from pg_index i join pg_attribute a
                     on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
                   where i.indrelid = 'raw.crypto_listings'::regclass and i.indisprimary
                     and a.attname = 'ranked_by') then
        alter table raw.crypto_listings drop constraint if exists crypto_listings_pkey;
        alter table raw.crypto_listings add constraint crypto_listings_pkey
            primary key (source, ranked_by, snapshot_at, coin_id);
    end if;
end $$;
