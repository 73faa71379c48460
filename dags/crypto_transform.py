"""crypto_transform: the per-minute dbt build of the quote marts, when quotes land."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import task

from moonwatch.assets import MARTS, RAW_QUOTES
from moonwatch.dag_defaults import moonwatch_dag
from moonwatch.dbt.build import BUILD_TIMEOUT_S

# A retry (the warehouse did not answer) holds every later load's build (one run at a time):
# retry after seconds, not the house 30 s.
BUILD_RETRY_DELAY = timedelta(seconds=5)


@moonwatch_dag(schedule=RAW_QUOTES, tags=["dbt", "transform"], retry_delay=BUILD_RETRY_DELAY)
def crypto_transform() -> None:
    """
    ### crypto_transform

    Builds what hangs off the quotes (`dbt_project/`): `stg_crypto_quotes` and
    `stg_crypto_quotes_rejected`, then the marts the dashboard reads every refresh
    (`quotes_coins`, `latest_quotes`, `coin_price_hourly`) and the load counts behind
    `pipeline_health`, with their data tests. A failing test fails the task, and the run; its
    log names the test. A quote row that breaks the value rules is one coin's problem, not a
    reason to freeze the others: `quotes_coins` leaves it out, the staging tests WARN about it
    and `marts.pipeline_health` counts it (`quarantined_last_hour`). Listings and FX marts are
    `crypto_transform_reference`'s.

    One task runs `dbt build --select <the quote models> --exclude tag:audit`
    (`moonwatch.dbt.build`): one dbt invocation, one task instance a run, in the task's own
    process, where the executor has imported dbt already (`moonwatch.preloading_executor`), so
    the marts follow a load within seconds and the build costs little at rest. dbt's own log,
    in the task log, lists every model and test with its result (the reference and audit DAGs
    keep a task per model and test). The tests on the big, growing tables check only recently
    loaded rows (dbt `where`, var `recent_test_window`), so a build costs what a minute of
    quotes costs, not what all history costs. The full-history checks (tag `audit`) run daily
    in `crypto_marts_audit`.

    Runs whenever the loader adds quotes (the `raw.crypto_quotes` Asset), not on a clock; one
    run at a time, so a burst of loads queues into a single next run. Emits the `marts` Asset
    when the build and its tests passed.
    """

    @task(
        pool="dbt",
        outlets=[MARTS],
        execution_timeout=timedelta(seconds=BUILD_TIMEOUT_S + 60),
    )
    def dbt_build() -> str:
        """`dbt build` of the quote marts and their per-build tests; a failing test fails it."""
        from moonwatch.airflow_glue import (
            fail_without_retry_on_permanent_errors,
            warehouse_url_from_connection,
        )
        from moonwatch.dbt.build import run_quotes_build

        with fail_without_retry_on_permanent_errors():
            return run_quotes_build(warehouse_url=warehouse_url_from_connection(), in_process=True)

    dbt_build()


crypto_transform()
