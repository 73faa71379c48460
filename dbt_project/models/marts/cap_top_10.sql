-- The ten largest coins by market cap in the latest listings snapshot.
-- The safe point (macros/incremental_watermark.sql) tells assert_top_10_marts_are_complete which
-- listings snapshots this build was sure to see.
{{ config(pre_hook="{{ record_safe_point([source('raw', 'crypto_listings')]) }}") }}
{{ top_10_from_latest_listings('market_cap') }}
