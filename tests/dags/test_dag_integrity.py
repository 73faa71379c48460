"""Every DAG imports cleanly and follows the house rules (tags, owner, retries ≥ 2, no catchup)."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
EXPECTED = {
    "crypto_quotes_produce",
    "crypto_quotes_load",
    "crypto_listings_load",
    "crypto_fx_load",
    "crypto_transform",
    "crypto_transform_reference",
    "crypto_marts_audit",
    "crypto_reconcile",
    "crypto_dbt_docs",
    "crypto_alerts",
    "crypto_quotes_backfill",
}


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_dags_import_without_errors(dag_bag) -> None:
    assert dag_bag.import_errors == {}


def test_dags_expected_ids_present(dag_bag) -> None:
    present = set(dag_bag.dag_ids)
    missing = {d for d in EXPECTED if (DAGS_DIR / f"{d}.py").exists()} - present
    assert not missing
    assert {"crypto_quotes_produce", "crypto_quotes_load"} <= present


def test_dags_have_tags_owner_retries_and_no_catchup(dag_bag) -> None:
    for dag_id, dag in dag_bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert not dag.catchup, f"{dag_id} catches up"
        assert dag.doc_md, f"{dag_id} has no doc"
        assert dag.start_date.tzinfo is not None, f"{dag_id} start_date is naive"
        for task in dag.tasks:
            assert task.owner == "moonwatch", f"{dag_id}.{task.task_id} owner"
            assert task.retries >= 2, f"{dag_id}.{task.task_id} retries {task.retries}"


def test_quotes_load_dag_is_woken_by_kafka_and_feeds_the_raw_quotes_asset(dag_bag) -> None:
    dag = dag_bag.dags["crypto_quotes_load"]
    sensor = dag.get_task("wait_for_quotes")
    # The sensor must only peek: committing would steal the message from the loader.
    assert sensor.commit_offset is False
    assert sensor.apply_function == "moonwatch.kafka.describe_waiting_message"
    load = dag.get_task("load_quotes")
    assert [o.uri for o in load.outlets] == ["moonwatch://warehouse/raw/crypto_quotes"]
    assert dag.max_active_runs == 1


def test_quote_tasks_run_ahead_of_dbt_in_the_executor_queue(dag_bag) -> None:
    produce = dag_bag.dags["crypto_quotes_produce"].get_task("produce_quotes_to_kafka")
    load = dag_bag.dags["crypto_quotes_load"].get_task("load_quotes")
    for task in (produce, load):
        assert task.priority_weight == 100 and task.weight_rule == "absolute"
