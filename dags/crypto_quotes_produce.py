"""
### Quotes in: CoinMarketCap → Kafka, every minute

Fetches the tracked coins (Airflow Variable `moonwatch_symbols`, else `MOONWATCH_SYMBOLS`) in
one `quotes/latest` call and produces one message per coin to the `crypto` topic
(`MOONWATCH_TOPIC`), keyed by CoinMarketCap id, with `acks=all` and idempotence. The task fails
if any message is not acknowledged. Without `CMC_API_KEY` the offline simulator is the source
and every message says `"source": "simulator"`.

The task runs every minute but calls only on its turn: it paces itself so the month's
`MOONWATCH_CMC_MONTHLY_CREDITS` last until the 1st (every minute when the plan allows; the
simulator is free). A run that is not its turn is *skipped*, and its log says why and when the
next call is.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import task

from moonwatch.dag_defaults import moonwatch_dag


@moonwatch_dag(
    schedule="* * * * *",
    tags=["quotes", "kafka"],
    retry_delay=timedelta(seconds=10),
    dagrun_timeout=timedelta(minutes=3),
)
def crypto_quotes_produce():
    # Ahead of dbt's tasks in the executor's queue: fresh quotes must not wait behind a build.
    @task(execution_timeout=timedelta(seconds=90), priority_weight=100, weight_rule="absolute")
    def produce_quotes_to_kafka(logical_date=None) -> dict:
        from airflow.sdk import Variable

        from moonwatch.airflow_glue import fail_without_retry_on_permanent_errors, task_settings
        from moonwatch.pipeline import fetch_and_produce_quotes

        with fail_without_retry_on_permanent_errors():
            settings = task_settings()
            symbols = Variable.get("moonwatch_symbols", default=settings.symbols)
            # Paced to the monthly credit budget: a run that is not its turn is skipped.
            return fetch_and_produce_quotes(settings, symbols, turn=logical_date)

    produce_quotes_to_kafka()


crypto_quotes_produce()
