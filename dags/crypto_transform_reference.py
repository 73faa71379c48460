"""crypto_transform_reference: dbt build of the listings and FX marts, and source freshness."""

from __future__ import annotations

from airflow.sdk import task

from moonwatch.assets import MARTS, RAW_FX_RATES, RAW_LISTINGS
from moonwatch.dag_defaults import moonwatch_dag
from moonwatch.dbt.cosmos import REFERENCE_SELECTION, dbt_build_group


@moonwatch_dag(schedule=(RAW_LISTINGS | RAW_FX_RATES), tags=["dbt", "transform"])
def crypto_transform_reference() -> None:
    """
    ### crypto_transform_reference

    Builds what hangs off the listings and the FX rates (`dbt_project/`): `stg_crypto_listings`
    and `stg_fx_rates`, then `cap_top_10`, `vol_top_10` and `fx_rates_daily`, each model a
    Cosmos task followed by its tests (`dbt build --select <those> --exclude tag:audit`).

    Runs when a listings snapshot (every 15 minutes) or the day's FX rates land. Then it checks
    `dbt source freshness` for every raw source, quotes included: a check that runs on other
    data's arrival can notice that quotes stopped, which a check triggered by quotes cannot
    (past warn_after only logs; past error_after fails). FX rates are optional: stale or
    missing ones (the FX API unreachable) are a warning in the log and in
    `marts.pipeline_health`, not a failed run; the top-10 marts do not need them. FX freshness
    follows the rates' own date (`as_of_date`). Emits the `marts` Asset.
    """
    dbt_build = dbt_build_group(REFERENCE_SELECTION)

    @task
    def source_freshness() -> str:
        """`dbt source freshness`: warn logs; error fails, except for optional FX rates."""
        from moonwatch.airflow_glue import warehouse_url_from_connection
        from moonwatch.dbt.checks import check_source_freshness

        return check_source_freshness(warehouse_url=warehouse_url_from_connection())

    @task(outlets=[MARTS])
    def publish_marts() -> None:
        """Every model and test passed: tell the marts' readers."""

    dbt_build >> [source_freshness(), publish_marts()]


crypto_transform_reference()
