"""
### History: CoinMarketCap `quotes/historical` → Kafka, one day per run

Fills a date range with past quotes through Airflow's backfill, from the UI (the DAG's
**Backfill** button) or the CLI:

```bash
airflow backfill create --dag-id crypto_quotes_backfill \
    --from-date 2026-11-01 --to-date 2026-11-30 --max-active-runs 2
```

Each run fetches its data interval (one day) for the tracked coins and produces the quotes
through the same contract and topic as the live producer, so the loader's natural key
`(coin_id, quote_currency, last_updated)` makes a re-run change nothing. Every call is checked
against the month's credit budget first (one credit per 100 data points: a day of 10 coins at
5 minutes costs 29). A plan without history (the free Basic plan) fails the run at once with
a message naming the plan. Offline, the simulator serves minute history (`make up` backfills
the last 30 days once, on a fresh warehouse). The daily schedule exists only so Airflow can cut
a range into days: its own scheduled runs skip.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, task

from moonwatch.dag_defaults import moonwatch_dag


@moonwatch_dag(
    # Daily data intervals, midnight to midnight UTC: a plain "@daily" or timedelta is a
    # trigger timetable in Airflow 3, whose runs have empty data intervals.
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    # CoinMarketCap's history begins in April 2013; a backfill may start anywhere after it.
    start_date=datetime(2013, 4, 28, tzinfo=UTC),
    max_active_runs=2,
    tags=["quotes", "kafka", "history"],
)
def crypto_quotes_backfill():
    # Behind the live producer in the executor's queue: history can wait, fresh quotes cannot.
    @task(execution_timeout=timedelta(minutes=15), priority_weight=1, weight_rule="absolute")
    def backfill_quotes_to_kafka(
        data_interval_start=None, data_interval_end=None, dag_run=None
    ) -> dict:
        from airflow.sdk import Variable
        from airflow.sdk.exceptions import AirflowSkipException

        from moonwatch.airflow_glue import fail_without_retry_on_permanent_errors, task_settings
        from moonwatch.history import backfill_quotes

        run_type = getattr(dag_run.run_type, "value", dag_run.run_type) if dag_run else None
        if run_type == "scheduled":
            raise AirflowSkipException(
                "scheduled runs fetch nothing: this DAG fills history on request. Backfill a "
                "date range from the UI or with `airflow backfill create --dag-id "
                "crypto_quotes_backfill --from-date ... --to-date ...`."
            )
        with fail_without_retry_on_permanent_errors():
            settings = task_settings()
            symbols = Variable.get("moonwatch_symbols", default=settings.symbols)
            return backfill_quotes(settings, data_interval_start, data_interval_end, symbols)

    backfill_quotes_to_kafka()


crypto_quotes_backfill()
