"""
### crypto_marts_audit: the full-history dbt checks, daily

The per-minute `crypto_transform` build runs `dbt build --exclude tag:audit`: its data tests
on the big, growing tables look only at recently loaded rows, so each build costs what a
minute of quotes costs, not what all history costs. This DAG runs the rest once a day:
`dbt test --select tag:audit` (`moonwatch.dbt.checks.run_marts_audit`), i.e. the incremental
marts against a full recomputation (`assert_quotes_coins_matches_full_refresh`,
`assert_coin_price_hourly_matches_full_refresh`), the relationships tests into the big marts,
and key uniqueness over all rows (also enforced by unique indexes).

A failing check fails the task at once, without retries, and its log names the failing tests;
dbt unable to reach the warehouse is retried. On a fresh install the first run comes before
anything is built: a test whose marts do not exist yet waits for the next run (the log names
them), and with nothing built at all the task is skipped, with the reason as its message.
It runs in the `dbt` pool, so it never takes the executor slots the quote producer and loader
need.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import task

from moonwatch.dag_defaults import moonwatch_dag


@moonwatch_dag(schedule="@daily", tags=["dbt", "audit"], retry_delay=timedelta(minutes=10))
def crypto_marts_audit():
    @task(pool="dbt", execution_timeout=timedelta(hours=1))
    def dbt_test_audit() -> str:
        """`dbt test --select tag:audit` on the warehouse; a failing test fails the task."""
        from airflow.sdk.exceptions import AirflowSkipException

        from moonwatch.airflow_glue import (
            fail_without_retry_on_permanent_errors,
            warehouse_url_from_connection,
        )
        from moonwatch.dbt.checks import NothingToCheckYet, run_marts_audit

        with fail_without_retry_on_permanent_errors():
            try:
                return run_marts_audit(warehouse_url=warehouse_url_from_connection())
            except NothingToCheckYet as e:
                raise AirflowSkipException(str(e)) from e

    dbt_test_audit()


crypto_marts_audit()
