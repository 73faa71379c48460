"""crypto_dbt_docs: house rules, its trigger, and real runs that write the docs Cosmos serves."""

from __future__ import annotations

import os

import pytest

from moonwatch.assets import RAW_FX_RATES, RAW_LISTINGS
from moonwatch.dbt import docs
from moonwatch.stack.config import StackConfig
from tests.dags.support import load_dag

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def dag(airflow_db: StackConfig):
    return load_dag("crypto_dbt_docs")


def test_crypto_dbt_docs_runs_on_listings_and_fx_in_the_dbt_pool(dag) -> None:
    assert {"moonwatch", "dbt", "docs"} <= set(dag.tags)
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.doc_md and "Browse" in dag.doc_md
    uris = {asset.uri for asset in dag.schedule.objects}
    assert uris == {RAW_LISTINGS.uri, RAW_FX_RATES.uri}
    task = dag.get_task("dbt_docs_generate")
    assert task.pool == "dbt" and task.retries >= 2 and task.owner == "moonwatch"


def test_crypto_dbt_docs_writes_the_served_folder_then_skips_while_current(
    dag, airflow_db: StackConfig, warehouse
) -> None:
    folder = docs.configured_docs_dir(os.environ[docs.DOCS_PROJECTS_ENV])
    for name in docs.DOCS_FILES:
        (folder / name).unlink(missing_ok=True)

    first = dag.test()

    assert first.state == "success"
    assert first.get_task_instance("dbt_docs_generate").state == "success"
    assert all((folder / name).stat().st_size > 0 for name in docs.DOCS_FILES)
    second = dag.test()
    assert second.get_task_instance("dbt_docs_generate").state == "skipped"
