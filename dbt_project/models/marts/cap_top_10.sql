-- The ten largest coins by market cap in the latest listings snapshot.
{{ top_10_from_latest_listings('market_cap') }}
