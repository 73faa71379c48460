-- The ten coins with the most 24h volume in the latest listings snapshot.
{{ top_10_from_latest_listings('volume_24h') }}
