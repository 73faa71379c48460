"""Moonwatch: a crypto market-data pipeline (CoinMarketCap → Kafka → Postgres → dbt → Streamlit)."""

__version__ = "0.1.0"
