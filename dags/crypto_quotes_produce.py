"""
### Quotes in: CoinMarketCap → Kafka, every minute

Fetches the tracked coins (Airflow Variable `moonwatch_symbols`, else `MOONWATCH_SYMBOLS`) in
one `quotes/latest` call and produces one message per coin to the `crypto` topic
(`MOONWATCH_TOPIC`), keyed by CoinMarketCap id, with `acks=all` and idempotence. The task fails
if any message is not acknowledged. Without `CMC_API_KEY` the offline simulator is the source
and every message says `"source": "simulator"`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task

from moonwatch.dag_defaults import moonwatch_default_args

DEFAULT_ARGS = moonwatch_default_args(retries=2, retry_delay=timedelta(seconds=10))


@dag(
    schedule="* * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=3),
    default_args=DEFAULT_ARGS,
    tags=["moonwatch", "quotes", "kafka"],
    doc_md=__doc__,
)
def crypto_quotes_produce():
    # Ahead of dbt's tasks in the executor's queue: fresh quotes must not wait behind a build.
    @task(execution_timeout=timedelta(seconds=90), priority_weight=100, weight_rule="absolute")
    def produce_quotes_to_kafka() -> dict:
        from airflow.sdk import Variable

        from moonwatch.airflow_glue import fail_without_retry_on_permanent_errors
        from moonwatch.pipeline import fetch_and_produce_quotes
        from moonwatch.settings import load_settings

        with fail_without_retry_on_permanent_errors():
            settings = load_settings()
            symbols = Variable.get("moonwatch_symbols", default=settings.symbols)
            return fetch_and_produce_quotes(settings, symbols)

    produce_quotes_to_kafka()


crypto_quotes_produce()
