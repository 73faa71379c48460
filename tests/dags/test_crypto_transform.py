"""crypto_transform (quotes, every minute) and crypto_transform_reference (listings, FX): each
imports and is asset-scheduled; the quotes build is one task running one `dbt build` of its
selection, the reference build a Cosmos task per model; together they build every model
exactly once, and they leave the full-history (`audit`) tests to crypto_marts_audit. The real
runs: test_transform_dag_runs.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from moonwatch.assets import MARTS, RAW_FX_RATES, RAW_LISTINGS, RAW_QUOTES
from moonwatch.dbt.build import BUILD_ENV, QUOTES_BUILD_ARGS
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


def _listed(args: list[str], warehouse_url: str, tmp_path: Path, extra_env: dict) -> list[str]:
    """`dbt ls <args> --output name`: the nodes a dbt command with those args would run."""
    result = run_dbt(
        ["ls", *args, "--output", "name", "--quiet"],  # the names only, no log lines
        warehouse_url=warehouse_url,
        target_path=tmp_path / "target",
        log_path=tmp_path / "logs",
        extra_env=extra_env,
        check=True,
    )
    return result.output.split()


def _build_selection() -> list[str]:
    """The node selection of crypto_transform's `dbt build` (its args without `build`)."""
    assert QUOTES_BUILD_ARGS[0] == "build"
    return list(QUOTES_BUILD_ARGS[1:])


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
    dbt_tasks = [t for t in reference_dag.tasks if type(t).__module__.startswith("cosmos.")]
    sensors = [t for t in dbt_tasks if hasattr(t, "model_unique_id")]
    assert len(sensors) >= 10 and _producer(reference_dag) in dbt_tasks
    # Airflow's defer/trigger race fails fast sensors now and then; see moonwatch.dbt.cosmos.
    assert {t.retry_delay for t in dbt_tasks} == {DBT_TASK_RETRY_DELAY}
    assert {t.poke_interval for t in sensors} == {WATCHER_POKE_INTERVAL_S}


def test_the_quotes_build_is_one_task_in_the_dbt_pool_that_emits_the_marts(dag) -> None:
    """One task instance a run (not a task per model and test): the per-minute build's cost
    and latency are dbt's, not those of ~18 task processes on 2 cores."""
    assert dag.task_ids == ["dbt_build"]
    build = dag.get_task("dbt_build")
    assert build.pool == "dbt"
    assert [outlet.uri for outlet in build.outlets] == [MARTS.uri]
    assert build.execution_timeout is not None
    assert not [t for t in dag.tasks if type(t).__module__.startswith("cosmos.")]


def test_each_transform_dag_is_scheduled_on_its_own_raw_assets(dag, reference_dag) -> None:
    from airflow.sdk.definitions.asset import AssetAny

    for d in (dag, reference_dag):
        assert type(d.timetable).__name__ == "AssetTriggeredTimetable"
    quotes = dag.timetable.asset_condition
    assert [a.uri for a in getattr(quotes, "objects", [quotes])] == [RAW_QUOTES.uri]
    condition = reference_dag.timetable.asset_condition
    assert isinstance(condition, AssetAny)
    assert {asset.uri for asset in condition.objects} == {RAW_LISTINGS.uri, RAW_FX_RATES.uri}


def test_quotes_build_only_the_quote_models_and_reference_the_rest(
    reference_dag, warehouse_url: str, tmp_path: Path
) -> None:
    quote_models = set(
        _listed([*_build_selection(), "--resource-type", "model"], warehouse_url, tmp_path, {})
    )
    assert quote_models == QUOTE_MODELS
    assert _models(reference_dag) == REFERENCE_MODELS
    # Together: every model of the project, each built by exactly one DAG, but for the views
    # crypto_alerts creates itself (moonwatch.alerts.ALERT_MODELS).
    from moonwatch.alerts import ALERT_MODELS

    nodes = json.loads(ensure_manifest().read_text())["nodes"]
    models = {n["name"] for n in nodes.values() if n["resource_type"] == "model"}
    by_alerts = {name.split(".")[-1] for name in ALERT_MODELS}
    assert models - by_alerts == (QUOTE_MODELS | REFERENCE_MODELS) - by_alerts
    assert not QUOTE_MODELS & REFERENCE_MODELS


def test_reference_dag_has_a_run_and_test_task_per_model(reference_dag) -> None:
    # Every model with data tests gets a test task right after its run task.
    for model in REFERENCE_MODELS - WITHOUT_TESTS:
        test_task = reference_dag.get_task(f"dbt_build.{model}.test")
        assert f"dbt_build.{model}.run" in test_task.upstream_task_ids
    # Model dependencies become task dependencies.
    top = reference_dag.get_task("dbt_build.cap_top_10.run")
    assert "dbt_build.stg_crypto_listings.test" in top.upstream_task_ids


def _audit_test_names() -> set[str]:
    nodes = json.loads(ensure_manifest().read_text())["nodes"]
    return {
        n["name"] for n in nodes.values() if n["resource_type"] == "test" and AUDIT_TAG in n["tags"]
    }


def test_the_quotes_build_runs_its_models_tests_but_no_audit_test(
    warehouse_url: str, tmp_path: Path
) -> None:
    """What crypto_transform's `dbt build` runs: each quote model's per-build data tests (on
    the path: a failing one fails the run, see test_transform_dag_runs.py), none of the
    full-history checks, and no unit test."""
    audit_tests = _audit_test_names()
    assert {
        "assert_quotes_coins_matches_full_refresh",
        "assert_coin_price_hourly_matches_full_refresh",
        "unique_quotes_coins_quote_key",
        "relationships_latest_quotes_quote_key__quote_key__ref_quotes_coins_",
    } <= audit_tests
    every_node = set(_listed(["--select", *QUOTES_SELECTION], warehouse_url, tmp_path, {}))
    built = set(_listed(_build_selection(), warehouse_url, tmp_path, dict(BUILD_ENV)))
    assert not built & audit_tests
    # The per-build tests on the big model are there (with their recent-rows `where`).
    assert {"positive_quotes_coins_price", "not_null_quotes_coins_price"} <= built
    assert "test_latest_quotes_newest_per_coin_currency" in every_node - built  # a unit test
    assert QUOTES_BUILD_ARGS[QUOTES_BUILD_ARGS.index("--exclude") + 1] == AUDIT_SELECTOR


def test_reference_dag_renders_no_audit_test(reference_dag) -> None:
    audit_tests = _audit_test_names()
    for task_id in reference_dag.task_ids:
        assert not any(name in task_id for name in audit_tests), task_id
    # Nor does the watcher producer wait for their results under a model's test task.
    producer = _producer(reference_dag)
    expected = {test for tests in producer.tests_per_model.values() for test in tests}
    assert expected and not any(uid.split(".")[2] in audit_tests for uid in expected)


def test_each_build_runs_one_dbt_build_of_its_selection_excluding_audit(reference_dag) -> None:
    """The one `dbt build` each DAG runs: its selection, `--exclude tag:audit`."""
    assert ("build", "--select", *QUOTES_SELECTION, "--exclude", "tag:audit") == QUOTES_BUILD_ARGS
    producer = _producer(reference_dag)
    command, _ = producer.build_cmd(context={}, cmd_flags=producer.add_cmd_flags())
    assert "build" in command
    assert command[command.index("--exclude") + 1] == AUDIT_SELECTOR == "tag:audit"
    assert command[command.index("--select") + 1].split() == list(REFERENCE_SELECTION)


def test_scheduled_builds_leave_unit_tests_to_ci(
    reference_dag, warehouse_url: str, tmp_path: Path
) -> None:
    """Unit tests run in tests/dbt's builds; the scheduled builds' dbt skips them."""
    reference_env = _producer(reference_dag).get_env(context={})
    for env in (reference_env, BUILD_ENV):
        assert env["DBT_EXCLUDE_RESOURCE_TYPES"] == "unit_test"
    every_node = _listed(["--select", *QUOTES_SELECTION], warehouse_url, tmp_path, {})
    scheduled = _listed(["--select", *QUOTES_SELECTION], warehouse_url, tmp_path, BUILD_ENV)
    assert "test_latest_quotes_newest_per_coin_currency" in every_node
    assert "test_latest_quotes_newest_per_coin_currency" not in scheduled
    assert "quotes_coins" in scheduled and "not_null_quotes_coins_price" in scheduled


def test_reference_checks_freshness_and_emits_marts_after_the_build(dag, reference_dag) -> None:
    publish = reference_dag.get_task("publish_marts")
    build_leaves = {t.task_id for t in reference_dag.task_group_dict["dbt_build"].get_leaves()}
    assert build_leaves and build_leaves <= publish.upstream_task_ids
    assert [outlet.uri for outlet in publish.outlets] == [MARTS.uri]
    freshness = reference_dag.get_task("source_freshness")
    assert build_leaves <= freshness.upstream_task_ids
    # The per-minute build does not pay a dbt start-up for freshness every minute.
    assert "source_freshness" not in dag.task_ids


def test_cosmos_profile_is_the_warehouse_connection_with_the_profiles_yml_settings(
    reference_dag,
) -> None:
    """Inside Airflow dbt connects as the `moonwatch_warehouse` connection says (the real build
    on it: test_transform_dag_runs.py); what a connection does not hold matches profiles.yml."""
    import yaml

    mapping = _producer(reference_dag).profile_config.profile_mapping
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
