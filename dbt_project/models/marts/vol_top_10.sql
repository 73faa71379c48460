-- The market's ten coins with the most 24h volume: the latest volume listing
-- (CoinMarketCap's listings/latest sort=volume_24h over the whole market, not the market-cap top N).
{{ top_10_from_latest_listings('volume_24h') }}
