"""
### crypto_dbt_docs: the dbt docs a data engineer browses in the Airflow UI

`dbt docs generate` (every source, model, column and exposure with its description, the
lineage graph, and the catalog of the real columns in the warehouse) into the folder that
Airflow's `[cosmos] dbt_docs_projects` names. Cosmos' Airflow 3 plugin serves it from the
api-server: **Browse → dbt Docs (Moonwatch)**, or `/cosmos/moonwatch/dbt_docs_index.html`
(the dashboard links there).

Runs when listings (every 15 minutes) or FX rates land, like `crypto_transform_reference`, but
regenerates only when the docs are out of date: none yet, the dbt project changed, a model was
built since (a fresh install builds the marts over its first runs), or the catalog is a day
old. Otherwise the task is skipped with the reason. It runs in the `dbt` pool.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import task

from moonwatch.assets import RAW_FX_RATES, RAW_LISTINGS
from moonwatch.dag_defaults import moonwatch_dag


@moonwatch_dag(
    schedule=(RAW_LISTINGS | RAW_FX_RATES), tags=["dbt", "docs"], retry_delay=timedelta(minutes=2)
)
def crypto_dbt_docs():
    @task(pool="dbt", execution_timeout=timedelta(minutes=20))
    def dbt_docs_generate() -> str:
        """Regenerate the docs Cosmos serves, when they are out of date (else skipped)."""
        from airflow.configuration import conf
        from airflow.sdk.exceptions import AirflowSkipException

        from moonwatch.airflow_glue import (
            fail_without_retry_on_permanent_errors,
            warehouse_url_from_connection,
        )
        from moonwatch.dbt import docs

        with fail_without_retry_on_permanent_errors():
            folder = docs.configured_docs_dir(
                conf.get("cosmos", "dbt_docs_projects", fallback=None)
            )
            try:
                return docs.refresh_docs(folder, warehouse_url=warehouse_url_from_connection())
            except docs.DocsUpToDate as e:
                raise AirflowSkipException(str(e)) from e

    dbt_docs_generate()


crypto_dbt_docs()
