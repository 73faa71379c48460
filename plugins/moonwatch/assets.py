"""Airflow Assets shared across DAGs: the raw tables the loaders update and dbt listens to.

Kept in one place so the producer side (``outlets``) and the consumer side (``schedule``) name
exactly the same URI.
"""

from __future__ import annotations

from airflow.sdk import Asset

RAW_QUOTES = Asset(name="raw.crypto_quotes", uri="moonwatch://warehouse/raw/crypto_quotes")
RAW_LISTINGS = Asset(name="raw.crypto_listings", uri="moonwatch://warehouse/raw/crypto_listings")
RAW_FX_RATES = Asset(name="raw.fx_rates", uri="moonwatch://warehouse/raw/fx_rates")
MARTS = Asset(name="marts", uri="moonwatch://warehouse/marts")
