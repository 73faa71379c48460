"""A failing DAG announces itself through the same channel as the price alerts: a real
`dag.test()` run whose task fails calls the failure callback every DAG gets from
``moonwatch.dag_defaults``, which delivers to the real SMTP and webhook servers, once per
failing DAG until a successful run resolves it."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from moonwatch.alerts import deliver_pending, evaluate, send_via_apprise
from moonwatch.stack.config import StackConfig
from tests.alerts.conftest import Inbox

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"

# A DAG built the way every Moonwatch DAG is: default args from moonwatch.dag_defaults.
FLAKY_DAG = """
from datetime import UTC, datetime, timedelta
import os

from airflow.sdk import dag, task

from moonwatch.dag_defaults import moonwatch_default_args


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args=moonwatch_default_args(retries=0, retry_delay=timedelta(seconds=1)),
    tags=["test"],
)
def alerts_flaky():
    @task
    def fetch_prices() -> None:
        if os.environ.get("FLAKY_FAILS") == "1":
            raise RuntimeError("upstream answered 503 twice")

    fetch_prices()


alerts_flaky()
"""


def _load(folder: Path, dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


def _successful_runs(dag_id: str) -> int:
    """The DAG's successful runs, read from Airflow's metadata database."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return (
            session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.state == "success").count()
        )


def test_dag_failure_callback_delivers_once_then_resolves(
    airflow_db: StackConfig,
    alert_db: psycopg.Connection,
    alert_channel: tuple[Inbox, Inbox],
    dbt: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mails, hooks = alert_channel
    dbt("run", "--select", "+alert_conditions", "alert_events")  # the views evaluate() reads
    monkeypatch.setenv("MOONWATCH_WAREHOUSE_URL", airflow_db.warehouse_url)
    (tmp_path / "alerts_flaky.py").write_text(textwrap.dedent(FLAKY_DAG))
    # dag.test() runs only DAGs of a configured bundle: the project's dags folder, plus this one.
    bundles = [
        {
            "name": name,
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(folder), "refresh_interval": 0},
        }
        for name, folder in (("dags-folder", DAGS_DIR), ("alerts-test", tmp_path))
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    dag = _load(tmp_path, "alerts_flaky")

    monkeypatch.setenv("FLAKY_FAILS", "1")
    assert dag.test().state == "failed"
    assert len(mails.items) == 1 and len(hooks.items) == 1
    mail = mails.items[0]
    assert mail["subject"] == "Moonwatch alert: DAG alerts_flaky failed"
    assert "Task fetch_prices of DAG alerts_flaky failed" in mail["body"]
    assert "RuntimeError: upstream answered 503 twice" in mail["body"]
    assert "Rule: dag-failures (dag_failure)" in mail["body"]
    assert "/dags/alerts_flaky/runs/" in mail["body"]
    assert hooks.items[0]["json"]["title"] == mail["subject"]

    # Failing again while the first failure is open: counted, not sent again.
    assert dag.test().state == "failed"
    assert len(mails.items) == 1 and len(hooks.items) == 1
    [event] = alert_db.execute(
        "select repeat_count, open_sent_at is not null, resolved_at from raw.alert_events"
    ).fetchall()
    assert event == (1, True, None)

    # A successful run: crypto_alerts' next evaluation resolves it, and says so once.
    monkeypatch.setenv("FLAKY_FAILS", "0")
    assert dag.test().state == "success"
    assert len(evaluate(alert_db, successful_runs=_successful_runs).resolved) == 1
    assert deliver_pending(alert_db, send_via_apprise).sent == 1
    assert [m["subject"] for m in mails.items] == [
        "Moonwatch alert: DAG alerts_flaky failed",
        "Moonwatch RESOLVED: DAG alerts_flaky failed",
    ]
    assert "DAG alerts_flaky completed a successful run" in mails.items[1]["body"]
    assert len(hooks.items) == 2


@pytest.mark.parametrize("path", sorted(DAGS_DIR.glob("*.py")), ids=lambda p: p.stem)
def test_dag_failure_every_dag_task_reports_its_failure(path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from moonwatch.alerts import DagFailureNotifier

    bag = DagBag(dag_folder=str(path))
    assert bag.import_errors == {} and bag.dags
    for dag in bag.dags.values():
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert any(isinstance(c, DagFailureNotifier) for c in callbacks), (
                f"{dag.dag_id}.{task.task_id} has no failure alert: use "
                "moonwatch.dag_defaults.moonwatch_default_args in the DAG's default_args"
            )


def test_dag_failure_is_sent_even_when_the_warehouse_is_down(
    alert_channel: tuple[Inbox, Inbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Postgres down is a common reason for a DAG to fail, and it is where alert state lives:
    the alert still goes out, saying it could not be de-duplicated."""
    from types import SimpleNamespace

    from moonwatch import alerts
    from moonwatch.alerts import dag_failures
    from moonwatch.stack.process import free_port

    mails, hooks = alert_channel
    down = f"postgresql://nobody:x@127.0.0.1:{free_port()}/moonwatch"
    # Inside Airflow the notifier reaches the warehouse through the connection.
    monkeypatch.setenv("AIRFLOW_CONN_MOONWATCH_WAREHOUSE", down)
    monkeypatch.setenv("MOONWATCH_WAREHOUSE_URL", down)
    monkeypatch.setattr(dag_failures, "rules_variable_text", lambda: None)  # outside a task: no API
    ti = SimpleNamespace(
        dag_id="crypto_quotes_load", run_id="scheduled__1", task_id="load_quotes", try_number=4
    )
    alerts.DagFailureNotifier().notify(
        {"ti": ti, "exception": RuntimeError("could not reach the warehouse")}
    )
    [mail] = mails.items
    assert mail["subject"] == "Moonwatch alert: DAG crypto_quotes_load failed"
    assert "Task load_quotes of DAG crypto_quotes_load failed after 4 tries" in mail["body"]
    assert "Sent without de-duplication" in mail["body"]
    assert [h["json"]["title"] for h in hooks.items] == [mail["subject"]]


def test_dag_failure_is_sent_even_while_the_rules_do_not_validate(
    airflow_db: StackConfig,
    alert_db: psycopg.Connection,
    alert_channel: tuple[Inbox, Inbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A typo in the rules fails crypto_alerts; that failure (and any other) still goes out."""
    from types import SimpleNamespace

    from moonwatch import alerts
    from moonwatch.alerts import dag_failures

    mails, _ = alert_channel
    monkeypatch.setenv("MOONWATCH_WAREHOUSE_URL", airflow_db.warehouse_url)
    monkeypatch.setattr(dag_failures, "rules_variable_text", lambda: '{"rules": [{"id": "x"}]}')
    ti = SimpleNamespace(dag_id="crypto_alerts", run_id="r1", task_id="evaluate_and_notify")
    error = alerts.AlertRulesError("the Airflow Variable moonwatch_alert_rules has invalid rules")
    alerts.DagFailureNotifier().notify({"ti": ti, "exception": error})
    alerts.DagFailureNotifier().notify({"ti": ti, "exception": error})  # once while open
    [mail] = mails.items
    assert mail["subject"] == "Moonwatch alert: DAG crypto_alerts failed"
    assert "AlertRulesError: the Airflow Variable moonwatch_alert_rules" in mail["body"]
    assert "Rule: rules-invalid (dag_failure)" in mail["body"]
