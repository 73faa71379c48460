"""crypto_transform (quotes, every minute) and crypto_transform_reference (listings, FX): each
imports, is asset-scheduled, has a Cosmos task per model of its own selection, together they
build every model exactly once, and they leave the full-history (`audit`) tests to
crypto_marts_audit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from moonwatch.assets import MARTS, RAW_FX_RATES, RAW_LISTINGS, RAW_QUOTES
from moonwatch.dbt.cosmos import (
    DBT_TASK_RETRY_DELAY,
    PROFILE_ARGS,
    QUOTES_SELECTION,
    REFERENCE_SELECTION,
    WATCHER_POKE_INTERVAL_S,
)
from moonwatch.dbt.environment import project_dir
from moonwatch.dbt.manifest import AUDIT_SELECTOR, AUDIT_TAG, ensure_manifest
from moonwatch.dbt.runner import run_dbt

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
QUOTE_MODELS = {
    "stg_crypto_quotes",
    "stg_crypto_quotes_rejected",
    "quotes_coins",
    "latest_quotes",
    "coin_price_hourly",
    "int_loads_per_minute",
    "pipeline_health",
    # crypto_alerts' view over latest_quotes: downstream of the quotes, so rebuilt with them.
    "alert_conditions",
}
REFERENCE_MODELS = {
    "stg_crypto_listings",
    "stg_fx_rates",
    "cap_top_10",
    "vol_top_10",
    "fx_rates_daily",
    "credit_budget",  # a view over the producer's pace, for the dashboard
    # Views over what crypto_reconcile writes to raw: they only need to exist.
    "stg_reconciliation",
    "reconciliation_runs",
}
WITHOUT_TESTS = {"pipeline_health"}


def _parse(dag_id: str):
    """The parsed DAG (DagBag reads Airflow's metadata DB, so it needs the real one)."""
    from airflow.dag_processing.dagbag import DagBag

    started = time.monotonic()
    bag = DagBag(dag_folder=str(DAGS_FOLDER / f"{dag_id}.py"))
    parse_seconds = time.monotonic() - started
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    assert dag is not None
    dag.parse_seconds = parse_seconds
    return dag


@pytest.fixture(scope="module")
def dag(airflow_db):
    return _parse("crypto_transform")


@pytest.fixture(scope="module")
def reference_dag(airflow_db):
    return _parse("crypto_transform_reference")


def _models(dag) -> set[str]:
    return {
        t.split(".")[1] for t in dag.task_ids if t.startswith("dbt_build.") and t.endswith(".run")
    }


def _producer(dag):
    return next(t for t in dag.tasks if type(t).__name__ == "DbtProducerWatcherOperator")


def test_transform_dags_import_with_style(dag, reference_dag) -> None:
    for d in (dag, reference_dag):
        assert d.tags and {"moonwatch", "dbt"} <= set(d.tags)
        assert d.catchup is False
        assert d.max_active_runs == 1
        assert d.start_date is not None and d.start_date.tzinfo is not None
        assert d.doc_md and d.dag_id in d.doc_md
        for task in d.tasks:
            assert task.owner == "moonwatch", task.task_id
            assert task.retries >= 2, task.task_id
        dbt_tasks = [t for t in d.tasks if type(t).__module__.startswith("cosmos.operators")]
        sensors = [t for t in dbt_tasks if hasattr(t, "model_unique_id")]
        assert len(sensors) >= 10 and _producer(d) in dbt_tasks
        # Airflow's defer/trigger race fails fast sensors now and then; see moonwatch.dbt.cosmos.
        assert {t.retry_delay for t in dbt_tasks} == {DBT_TASK_RETRY_DELAY}
        assert {t.poke_interval for t in sensors} == {WATCHER_POKE_INTERVAL_S}


def test_each_transform_dag_is_scheduled_on_its_own_raw_assets(dag, reference_dag) -> None:
    from airflow.sdk.definitions.asset import AssetAny

    for d in (dag, reference_dag):
        assert type(d.timetable).__name__ == "AssetTriggeredTimetable"
    quotes = dag.timetable.asset_condition
    assert [a.uri for a in getattr(quotes, "objects", [quotes])] == [RAW_QUOTES.uri]
    condition = reference_dag.timetable.asset_condition
    assert isinstance(condition, AssetAny)
    assert {asset.uri for asset in condition.objects} == {RAW_LISTINGS.uri, RAW_FX_RATES.uri}


def test_quotes_build_only_the_quote_models_and_reference_the_rest(dag, reference_dag) -> None:
    assert _models(dag) == QUOTE_MODELS
    assert _models(reference_dag) == REFERENCE_MODELS
    # Together: every model of the project, each built by exactly one DAG, but for the views
    # crypto_alerts creates itself (moonwatch.alerts.ALERT_MODELS).
    from moonwatch.alerts import ALERT_MODELS

    nodes = json.loads(ensure_manifest().read_text())["nodes"]
    models = {n["name"] for n in nodes.values() if n["resource_type"] == "model"}
    by_alerts = {name.split(".")[-1] for name in ALERT_MODELS}
    assert models - by_alerts == (QUOTE_MODELS | REFERENCE_MODELS) - by_alerts
    assert not QUOTE_MODELS & REFERENCE_MODELS


def test_transform_dags_have_a_run_and_test_task_per_model(dag, reference_dag) -> None:
    for d, models in ((dag, QUOTE_MODELS), (reference_dag, REFERENCE_MODELS)):
        # Every model with data tests gets a test task right after its run task.
        for model in models - WITHOUT_TESTS:
            test_task = d.get_task(f"dbt_build.{model}.test")
            assert f"dbt_build.{model}.run" in test_task.upstream_task_ids
    # Model dependencies become task dependencies.
    latest = dag.get_task("dbt_build.latest_quotes.run")
    assert "dbt_build.quotes_coins.test" in latest.upstream_task_ids


def _audit_test_names() -> set[str]:
    nodes = json.loads(ensure_manifest().read_text())["nodes"]
    return {
        n["name"] for n in nodes.values() if n["resource_type"] == "test" and AUDIT_TAG in n["tags"]
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
    producer = _producer(dag)
    expected = {test for tests in producer.tests_per_model.values() for test in tests}
    assert expected and not any(uid.split(".")[2] in audit_tests for uid in expected)
    # A per-build test on a big model is still there (with its recent-rows `where`).
    assert "dbt_build.quotes_coins.test" in dag.task_ids


def test_each_producer_runs_one_dbt_build_of_its_selection_excluding_audit(
    dag, reference_dag
) -> None:
    """The one `dbt build` each watcher producer runs: its selection, `--exclude tag:audit`."""
    for d, selection in (
        (dag, QUOTES_SELECTION),
        (reference_dag, REFERENCE_SELECTION),
    ):
        producer = _producer(d)
        command, _ = producer.build_cmd(context={}, cmd_flags=producer.add_cmd_flags())
        assert "build" in command
        assert command[command.index("--exclude") + 1] == AUDIT_SELECTOR == "tag:audit"
        assert command[command.index("--select") + 1].split() == list(selection)


def test_scheduled_builds_leave_unit_tests_to_ci(
    dag, reference_dag, warehouse_url: str, tmp_path: Path
) -> None:
    """Unit tests run in tests/dbt's builds; the scheduled producers' dbt skips them."""
    envs = [_producer(d).get_env(context={}) for d in (dag, reference_dag)]
    for env in envs:
        assert env["DBT_EXCLUDE_RESOURCE_TYPES"] == "unit_test"

    def listed(extra_env: dict) -> list[str]:
        result = run_dbt(
            ["ls", "--select", *QUOTES_SELECTION, "--output", "name"],
            warehouse_url=warehouse_url,
            target_path=tmp_path / "target",
            log_path=tmp_path / "logs",
            extra_env=extra_env,
            check=True,
        )
        return result.output.split()

    every_node = listed({})
    scheduled = listed({k: str(v) for k, v in envs[0].items() if k.startswith("DBT_")})
    assert "test_latest_quotes_newest_per_coin_currency" in every_node
    assert "test_latest_quotes_newest_per_coin_currency" not in scheduled
    assert "quotes_coins" in scheduled and "not_null_quotes_coins_price" in scheduled


def test_reference_checks_freshness_and_both_emit_marts_after_the_build(dag, reference_dag) -> None:
    for d in (dag, reference_dag):
        publish = d.get_task("publish_marts")
        build_leaves = {t.task_id for t in d.task_group_dict["dbt_build"].get_leaves()}
        assert build_leaves and build_leaves <= publish.upstream_task_ids
        assert [outlet.uri for outlet in publish.outlets] == [MARTS.uri]
    freshness = reference_dag.get_task("source_freshness")
    leaves = {t.task_id for t in reference_dag.task_group_dict["dbt_build"].get_leaves()}
    assert leaves <= freshness.upstream_task_ids
    # The per-minute build does not pay a dbt start-up for freshness every minute.
    assert "source_freshness" not in dag.task_ids


def test_cosmos_profile_is_the_warehouse_connection_with_the_profiles_yml_settings(dag) -> None:
    """Inside Airflow dbt connects as the `moonwatch_warehouse` connection says (the real build
    on it: test_transform_dag_runs.py); what a connection does not hold matches profiles.yml."""
    import yaml

    mapping = _producer(dag).profile_config.profile_mapping
    assert type(mapping).__name__ == "PostgresUserPasswordProfileMapping"
    assert mapping.conn_id == "moonwatch_warehouse"
    profiles = yaml.safe_load((project_dir() / "profiles.yml").read_text())
    by_hand = profiles["moonwatch"]["outputs"]["warehouse"]
    assert mapping.profile_args == PROFILE_ARGS
    assert PROFILE_ARGS["schema"] == by_hand["schema"]
    assert PROFILE_ARGS["connect_timeout"] == by_hand["connect_timeout"]
    assert f"'{PROFILE_ARGS['threads']}'" in by_hand["threads"]  # its default


def test_transform_dags_parse_fast_from_the_manifest(dag, reference_dag) -> None:
    # Parsing from a manifest (no dbt ls, no database) keeps the DAG files cheap.
    assert dag.parse_seconds < 30 and reference_dag.parse_seconds < 30


# A real run of this DAG happens in tests/e2e/test_full_stack.py, under a real scheduler and
# triggerer: dag.test() cannot drive Cosmos's deferrable watcher sensors (it waits on them
# forever), so there is no dag.test() run here.
