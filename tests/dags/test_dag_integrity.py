"""Every DAG imports cleanly, each expected DAG is there, and they follow the house rules (tags,
owner, retries ≥ 2, no catchup); the quote DAGs are wired to what they feed."""

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
    "crypto_maintenance",
}


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_dags_import_without_errors(dag_bag) -> None:
    assert dag_bag.import_errors == {}


def test_dags_are_exactly_the_expected_ones(dag_bag) -> None:
    # A deleted or renamed DAG file, or a DAG the list above does not know of, fails here.
    present = set(dag_bag.dag_ids)
    assert not EXPECTED - present, f"missing DAGs: {sorted(EXPECTED - present)}"
    assert not present - EXPECTED, f"DAGs this test does not know: {sorted(present - EXPECTED)}"


def test_dags_have_tags_owner_retries_and_no_catchup(dag_bag) -> None:
    for dag_id, dag in dag_bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert not dag.catchup, f"{dag_id} catches up"
        assert dag.doc_md, f"{dag_id} has no doc"
        assert dag.start_date.tzinfo is not None, f"{dag_id} start_date is naive"
        for task in dag.tasks:
            assert task.owner == "moonwatch", f"{dag_id}.{task.task_id} owner"
            assert task.retries >= 2, f"{dag_id}.{task.task_id} retries {task.retries}"


def _scheduled_on(dag) -> set[str]:
    """The URIs of the Assets an Asset-scheduled DAG waits for (an Asset, or any/all of some)."""

    def walk(condition) -> set[str]:
        if hasattr(condition, "objects"):
            return set().union(*(walk(c) for c in condition.objects))
        return {condition.uri}

    return walk(dag.timetable.asset_condition)


def test_quotes_load_dag_is_woken_by_kafka_and_wakes_the_quote_marts_build(dag_bag) -> None:
    from airflow.providers.common.compat.module_loading import import_string

    dag = dag_bag.dags["crypto_quotes_load"]
    sensor = dag.get_task("wait_for_quotes")
    # The sensor must only peek: committing would steal the message from the loader.
    assert sensor.commit_offset is False
    # The triggerer imports the function by its dotted path at run time (as here): it must
    # resolve, and a missing or unreadable message is "no work".
    assert import_string(sensor.apply_function)(None) is None
    # The scheduler starts the sensor in the triggerer from what the serialized DAG holds:
    # the trigger's class (importable) and its arguments, peeking only, on the quotes topic.
    # Built as the triggerer builds it: from the row the scheduler stores (kwargs encoded).
    from airflow.models.trigger import Trigger
    from airflow.serialization.serialized_objects import DagSerialization

    served = DagSerialization.from_dict(DagSerialization.to_dict(dag)).get_task("wait_for_quotes")
    assert served.start_from_trigger is True
    start = served.start_trigger_args
    row = Trigger(classpath=start.trigger_cls, kwargs=start.trigger_kwargs)
    trigger = import_string(row.classpath)(**row.kwargs)
    assert trigger.serialize()[0] == start.trigger_cls
    assert trigger.commit_offset is False
    assert trigger.topics == list(sensor.topics)
    assert start.timeout is not None
    load = dag.get_task("load_quotes")
    assert {o.uri for o in load.outlets} <= _scheduled_on(dag_bag.dags["crypto_transform"])
    assert dag.max_active_runs == 1


def _effective_weight(task) -> int:
    """The task's priority in the executor's queue, as Airflow's weight rule computes it."""
    rule = str(getattr(task.weight_rule, "value", task.weight_rule))
    if rule == "absolute":
        return task.priority_weight
    relatives = task.get_flat_relatives(upstream=rule == "upstream")
    return task.priority_weight + sum(t.priority_weight for t in relatives)


def test_quote_tasks_run_ahead_of_dbt_and_history_in_the_executor_queue(dag_bag) -> None:
    produce = dag_bag.dags["crypto_quotes_produce"].get_task("produce_quotes_to_kafka")
    load = dag_bag.dags["crypto_quotes_load"].get_task("load_quotes")
    behind = [
        task
        for dag_id in (
            "crypto_transform",
            "crypto_transform_reference",
            "crypto_marts_audit",
            "crypto_dbt_docs",
            "crypto_quotes_backfill",
        )
        for task in dag_bag.dags[dag_id].tasks
    ]
    heaviest = max(behind, key=_effective_weight)
    for task in (produce, load):
        assert _effective_weight(task) > _effective_weight(heaviest), (
            f"{task.task_id} ({_effective_weight(task)}) is not ahead of "
            f"{heaviest.dag_id}.{heaviest.task_id} ({_effective_weight(heaviest)})"
        )
