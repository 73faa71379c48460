"""crypto_transform: the DAG imports, is asset-scheduled, and has a Cosmos task per model."""

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


@pytest.mark.integration
@pytest.mark.slow
def test_crypto_transform_runs_end_to_end(dag, warehouse, pg) -> None:
    """One real run through dag.test(): every Cosmos task builds and tests on the warehouse."""
    from airflow.utils.state import DagRunState

    warehouse.execute(
        "insert into raw.fx_rates (as_of_date, currency, rate_per_usd, source)"
        " values (current_date, 'EUR', 0.9, 'frankfurter')"
    )
    warehouse.execute(
        "insert into raw.crypto_listings (snapshot_at, coin_id, quote_currency, source, coin)"
        " values (now(), 1, 'USD', 'simulator', %s::jsonb)",
        (
            json.dumps(
                {
                    "id": 1,
                    "symbol": "BTC",
                    "name": "Bitcoin",
                    "quote": {"USD": {"price": 100.0, "market_cap": 1e6, "volume_24h": 1e4}},
                }
            ),
        ),
    )
    warehouse.execute(
        "insert into raw.crypto_quotes (coin_id, quote_currency, last_updated, message,"
        " kafka_topic, kafka_partition, kafka_offset) values (1, 'USD', now(), %s::jsonb,"
        " 'crypto', 0, 1)",
        (
            json.dumps(
                {
                    "schema_version": 1,
                    "source": "simulator",
                    "coin_id": 1,
                    "symbol": "BTC",
                    "name": "Bitcoin",
                    "slug": "bitcoin",
                    "quote_currency": "USD",
                    "price": 100.0,
                    "market_cap": 1e6,
                    "last_updated": "2025-01-01T10:00:00Z",
                    "fetched_at": "2025-01-01T10:00:01Z",
                }
            ),
        ),
    )
    run = dag.test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == DagRunState.SUCCESS, states
    assert states["publish_marts"] == "success"
    count = warehouse.execute("select count(*) from marts.latest_quotes").fetchone()[0]
    assert count == 1
