"""
### Listings snapshot: CoinMarketCap → Postgres, no Kafka

Every `MOONWATCH_LISTINGS_EVERY_MINUTES` (default 15) reads `listings/latest` (top
`MOONWATCH_LISTINGS_LIMIT`, default 200, by market cap) and writes one snapshot to
`raw.crypto_listings`, idempotent per source and snapshot time. A coin that breaks the quote
contract's rules goes to `raw.crypto_listings_rejected` with the reason instead. Updates the
`raw.crypto_listings` Asset.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import task

from moonwatch.assets import RAW_LISTINGS
from moonwatch.dag_defaults import moonwatch_dag
from moonwatch.settings import load_settings


@moonwatch_dag(
    schedule=timedelta(minutes=load_settings().listings_every_minutes),
    tags=["listings", "postgres"],
)
def crypto_listings_load():
    @task(outlets=[RAW_LISTINGS], execution_timeout=timedelta(minutes=5))
    def load_listings_snapshot(logical_date=None) -> dict:
        from moonwatch.airflow_glue import fail_without_retry_on_permanent_errors, task_settings
        from moonwatch.pipeline import load_listings

        with fail_without_retry_on_permanent_errors():
            # The run's own turn: a retry of this run may still call, paced or not.
            return load_listings(task_settings(), turn=logical_date)

    load_listings_snapshot()


crypto_listings_load()
