"""crypto_transform: the per-minute dbt build of the quote marts, when quotes land."""

from __future__ import annotations

from airflow.sdk import task

from moonwatch.assets import MARTS, RAW_QUOTES
from moonwatch.dag_defaults import moonwatch_dag
from moonwatch.dbt.cosmos import QUOTES_SELECTION, dbt_build_group


@moonwatch_dag(schedule=RAW_QUOTES, tags=["dbt", "transform"])
def crypto_transform() -> None:
    """
    ### crypto_transform

    Builds what hangs off the quotes (`dbt_project/`): `stg_crypto_quotes` and
    `stg_crypto_quotes_rejected`, then the marts the dashboard reads every refresh
    (`quotes_coins`, `latest_quotes`, `coin_price_hourly`) and the load counts behind
    `pipeline_health`. Each model is a Cosmos task followed by its tests; a failing test fails
    its task, and the run. A quote row that breaks the value rules is one coin's problem, not a
    reason to freeze the others: `quotes_coins` leaves it out, the staging tests WARN about it
    and `marts.pipeline_health` counts it (`quarantined_last_hour`). Listings and FX marts are
    `crypto_transform_reference`'s.

    It runs `dbt build --select <the quote models> --exclude tag:audit`: the tests on the big,
    growing tables check only recently loaded rows (dbt `where`, var `recent_test_window`), so
    a build costs what a minute of quotes costs, not what all history costs. The full-history
    checks (tag `audit`) run daily in `crypto_marts_audit`.

    Runs whenever the loader adds quotes (the `raw.crypto_quotes` Asset), not on a clock; one
    run at a time, so a burst of loads queues into a single next run. That is also why this
    build is kept small: while it runs, the next minute's quotes wait. Emits the `marts` Asset
    for whatever reads the marts.
    """
    dbt_build = dbt_build_group(QUOTES_SELECTION)

    @task(outlets=[MARTS])
    def publish_marts() -> None:
        """Every model and test passed: tell the marts' readers."""

    dbt_build >> publish_marts()


crypto_transform()
