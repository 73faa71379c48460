-- The market's ten coins with the most 24h volume: the latest volume listing
-- (CoinMarketCap's listings/latest sort=volume_24h over the whole market, not the market-cap top N).
-- The safe point (macros/incremental_watermark.sql) tells assert_top_10_marts_are_complete which
-- listings snapshots this build was sure to see.
{{ config(pre_hook="{{ record_safe_point([source('raw', 'crypto_listings')]) }}") }}
{{ top_10_from_latest_listings('volume_24h') }}
