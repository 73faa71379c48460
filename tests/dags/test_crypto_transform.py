"""crypto_transform: the DAG imports, is asset-scheduled, has a Cosmos task per model, and
leaves the full-history (`audit`) tests to crypto_marts_audit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from moonwatch import transform
from moonwatch.assets import MARTS, RAW_FX_RATES, RAW_LISTINGS, RAW_QUOTES

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
MARTS_MODELS = {
    "quotes_coins",
    "latest_quotes",
    "coin_price_hourly",
    "cap_top_10",
    "vol_top_10",
    "fx_rates_daily",
    "pipeline_health",
}
STAGING_MODELS = {
    "stg_crypto_quotes",
    "stg_crypto_quotes_rejected",
    "stg_crypto_listings",
    "stg_fx_rates",
}


@pytest.fixture(scope="module")
def dag(airflow_db):
    """The parsed DAG (DagBag reads Airflow's metadata DB, so it needs the real one)."""
    from airflow.dag_processing.dagbag import DagBag

    started = time.monotonic()
    bag = DagBag(dag_folder=str(DAGS_FOLDER / "crypto_transform.py"))
    parse_seconds = time.monotonic() - started
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("crypto_transform")
    assert dag is not None
    dag.parse_seconds = parse_seconds
    return dag


def test_crypto_transform_imports_with_style(dag) -> None:
    assert dag.tags and {"moonwatch", "dbt"} <= set(dag.tags)
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.start_date is not None and dag.start_date.tzinfo is not None
    assert dag.doc_md and "crypto_transform" in dag.doc_md
    for task in dag.tasks:
        assert task.owner == "moonwatch", task.task_id
        assert task.retries >= 2, task.task_id


def test_crypto_transform_is_scheduled_on_the_raw_assets(dag) -> None:
    from airflow.sdk.definitions.asset import AssetAny

    assert isinstance(dag.timetable.asset_condition, AssetAny)
    uris = {asset.uri for asset in dag.timetable.asset_condition.objects}
    assert uris == {RAW_QUOTES.uri, RAW_LISTINGS.uri, RAW_FX_RATES.uri}
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"


def test_crypto_transform_has_a_run_and_test_task_per_model(dag) -> None:
    task_ids = set(dag.task_ids)
    for model in MARTS_MODELS | STAGING_MODELS:
        assert f"dbt_build.{model}.run" in task_ids, model
    # Every model with data tests gets a test task right after its run task.
    for model in MARTS_MODELS - {"pipeline_health"} | STAGING_MODELS:
        test_task = dag.get_task(f"dbt_build.{model}.test")
        assert f"dbt_build.{model}.run" in test_task.upstream_task_ids
    # Model dependencies become task dependencies.
    latest = dag.get_task("dbt_build.latest_quotes.run")
    assert "dbt_build.quotes_coins.test" in latest.upstream_task_ids


def _audit_test_names() -> set[str]:
    nodes = json.loads(transform.ensure_manifest().read_text())["nodes"]
    return {
        n["name"]
        for n in nodes.values()
        if n["resource_type"] == "test" and transform.AUDIT_TAG in n["tags"]
    }


def test_crypto_transform_renders_no_audit_test(dag) -> None:
    audit_tests = _audit_test_names()
    # The full-history checks the per-minute build must not run.
    assert {
        "assert_quotes_coins_matches_full_refresh",
        "assert_coin_price_hourly_matches_full_refresh",
        "unique_quotes_coins_quote_key",
        "relationships_latest_quotes_quote_key__quote_key__ref_quotes_coins_",
    } <= audit_tests
    for task_id in dag.task_ids:
        assert not any(name in task_id for name in audit_tests), task_id
    # Nor does the watcher producer wait for their results under a model's test task.
    producer = next(t for t in dag.tasks if type(t).__name__ == "DbtProducerWatcherOperator")
    expected = {test for tests in producer.tests_per_model.values() for test in tests}
    assert expected and not any(uid.split(".")[2] in audit_tests for uid in expected)
    # A per-build test on a big model is still there (with its recent-rows `where`).
    assert "dbt_build.quotes_coins.test" in dag.task_ids


def test_crypto_transform_producer_runs_dbt_build_excluding_audit(dag) -> None:
    """The one `dbt build` the watcher producer runs carries `--exclude tag:audit`."""
    producer = next(t for t in dag.tasks if type(t).__name__ == "DbtProducerWatcherOperator")
    command, _ = producer.build_cmd(context={}, cmd_flags=producer.add_cmd_flags())
    assert "build" in command
    assert command[command.index("--exclude") + 1] == transform.AUDIT_SELECTOR == "tag:audit"
    assert "--select" not in command  # everything else is built


def test_crypto_transform_checks_freshness_and_emits_marts_after_the_build(dag) -> None:
    freshness = dag.get_task("source_freshness")
    publish = dag.get_task("publish_marts")
    build_leaves = {t.task_id for t in dag.task_group_dict["dbt_build"].get_leaves()}
    assert build_leaves and build_leaves <= freshness.upstream_task_ids
    assert build_leaves <= publish.upstream_task_ids
    assert [outlet.uri for outlet in publish.outlets] == [MARTS.uri]


def test_crypto_transform_parses_fast_from_the_manifest(dag) -> None:
    manifest = transform.ensure_manifest()
    nodes = json.loads(manifest.read_text())["nodes"]
    models = {n["name"] for n in nodes.values() if n["resource_type"] == "model"}
    assert models == MARTS_MODELS | STAGING_MODELS
    # Parsing from a manifest (no dbt ls, no database) keeps the DAG file cheap.
    assert dag.parse_seconds < 30


# A real run of this DAG happens in tests/e2e/test_full_stack.py, under a real scheduler and
# triggerer: dag.test() cannot drive Cosmos's deferrable watcher sensors (it waits on them
# forever), so there is no dag.test() run here.
