"""crypto_marts_audit: daily, one task running the `audit`-tagged dbt tests, house rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from moonwatch.dbt import checks
from moonwatch.dbt.cosmos import QUOTES_SELECTION, REFERENCE_SELECTION, render_config
from moonwatch.dbt.manifest import AUDIT_SELECTOR, audit_tests_by_relations
from moonwatch.dbt.runner import DbtError, DbtResult
from moonwatch.errors import WarehouseError

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER / "crypto_marts_audit.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("crypto_marts_audit")
    assert dag is not None
    return dag


def test_crypto_marts_audit_imports_with_style(dag) -> None:
    assert {"moonwatch", "dbt", "audit"} <= set(dag.tags)
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.start_date is not None and dag.start_date.tzinfo is not None
    assert dag.doc_md and "crypto_marts_audit" in dag.doc_md and "tag:audit" in dag.doc_md
    for task in dag.tasks:
        assert task.owner == "moonwatch", task.task_id
        assert task.retries >= 2, task.task_id


def test_crypto_marts_audit_is_daily_with_one_dbt_task(dag) -> None:
    assert dag.schedule == "@daily"
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert dag.task_ids == ["dbt_test_audit"]
    assert dag.get_task("dbt_test_audit").pool == "dbt"


def test_marts_audit_selects_exactly_the_audit_tag() -> None:
    assert checks.marts_audit_args() == ["test", "--select", "tag:audit"]
    assert AUDIT_SELECTOR == "tag:audit"
    # The transform builds exclude the same selection.
    for selection in (QUOTES_SELECTION, REFERENCE_SELECTION):
        assert render_config(selection).exclude == ["tag:audit"]


def test_run_marts_audit_fails_visibly_and_retries_only_when_dbt_cannot_run(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(checks, "existing_relations", lambda names, **_: set(names))

    def fake_run_dbt(workdir, args, **kwargs):
        calls.append(list(args))
        return DbtResult(tuple(args), fake_run_dbt.code, fake_run_dbt.output, 0.1)

    monkeypatch.setattr(checks, "run_dbt_in", fake_run_dbt)
    fake_run_dbt.code, fake_run_dbt.output = 0, "Done. PASS=16 WARN=0 ERROR=0 SKIP=0 TOTAL=16"
    assert checks.run_marts_audit().startswith("Done. PASS=16")
    assert calls == [["test", "--select", "tag:audit"]]

    fake_run_dbt.code = 1
    fake_run_dbt.output = "Failure in test unique_quotes_coins_quote_key (models/marts/x.yml)"
    with pytest.raises(DbtError, match="unique_quotes_coins_quote_key"):
        checks.run_marts_audit()

    fake_run_dbt.code, fake_run_dbt.output = 2, "Database Error: connection refused"
    with pytest.raises(WarehouseError, match="could not run"):
        checks.run_marts_audit()


def test_run_marts_audit_checks_what_is_built_and_nothing_is_not_a_failure(monkeypatch) -> None:
    tests = audit_tests_by_relations()
    assert tests["assert_quotes_coins_matches_full_refresh"] == {
        "marts.quotes_coins",
        "staging.stg_crypto_quotes",
    }
    everything = {r for relations in tests.values() for r in relations}
    calls = []

    def fake_run_dbt(workdir, args, **kwargs):
        calls.append(list(args))
        return DbtResult(tuple(args), 0, "Done. PASS=3 WARN=0 ERROR=0", 0.1)

    monkeypatch.setattr(checks, "run_dbt_in", fake_run_dbt)
    # No listings yet: the top-10 marts are not built, the rest is audited.
    built = everything - {"marts.cap_top_10", "marts.vol_top_10"}
    monkeypatch.setattr(checks, "existing_relations", lambda names, **_: names & built)
    summary = checks.run_marts_audit()
    assert summary.endswith("(not built yet, not audited: marts.cap_top_10, marts.vol_top_10)")
    (args,) = calls
    assert args[:2] == ["test", "--select"]
    assert set(args[2:]) == {name for name, rels in tests.items() if rels <= built}
    assert "assert_quotes_coins_matches_full_refresh" in args
    assert not any("top_10" in name for name in args)

    # A fresh install: nothing built, nothing to check, and the message says what to wait for.
    monkeypatch.setattr(checks, "existing_relations", lambda names, **_: set())
    with pytest.raises(checks.NothingToCheckYet, match=r"marts\.quotes_coins.*crypto_transform"):
        checks.run_marts_audit()
    assert len(calls) == 1
