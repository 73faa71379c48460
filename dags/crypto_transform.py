"""crypto_transform: dbt build (staging, marts, per-build tests) when raw data lands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task
from cosmos import DbtTaskGroup

from moonwatch import transform
from moonwatch.assets import MARTS, RAW_FX_RATES, RAW_LISTINGS, RAW_QUOTES


@dag(
    schedule=(RAW_QUOTES | RAW_LISTINGS | RAW_FX_RATES),
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["moonwatch", "dbt", "transform"],
    default_args={"owner": "moonwatch", "retries": 2, "retry_delay": timedelta(seconds=30)},
)
def crypto_transform() -> None:
    """
    ### crypto_transform

    Builds the dbt project (`dbt_project/`): staging views, then the marts the dashboard reads
    (`quotes_coins`, `latest_quotes`, `coin_price_hourly`, `cap_top_10`, `vol_top_10`,
    `fx_rates_daily`, `pipeline_health`), each model a Cosmos task followed by its tests. A failing
    test fails its task, and the run.

    It runs `dbt build --exclude tag:audit`: the tests on the big, growing tables check only
    recently loaded rows (dbt `where`, var `recent_test_window`), so a build costs what a minute
    of quotes costs, not what all history costs. The full-history checks (tag `audit`) run daily
    in `crypto_marts_audit`.

    Runs whenever a loader updates a raw table (the `raw.*` Assets), not on a clock; one run at a
    time, so a burst of quote loads queues into a single next run. After the build it checks
    `dbt source freshness` (past warn_after only logs; past error_after fails) and emits the
    `marts` Asset for whatever reads the marts.
    """
    dbt_build = DbtTaskGroup(
        group_id="dbt_build",
        project_config=transform.project_config(),
        profile_config=transform.profile_config(),
        execution_config=transform.execution_config(),
        render_config=transform.render_config(),
        operator_args=transform.operator_args(),
    )

    @task
    def source_freshness() -> str:
        """`dbt source freshness`: warn logs, error fails."""
        return transform.check_source_freshness()

    @task(outlets=[MARTS])
    def publish_marts() -> None:
        """Every model and test passed: tell the marts' readers."""

    dbt_build >> [source_freshness(), publish_marts()]


crypto_transform()
