"""The crypto_alerts DAG itself, one real `dag.test()` run: rules from the Airflow Variable,
conditions from the marts, one email and one webhook call."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from moonwatch.stack.config import StackConfig
from tests.alerts.conftest import Inbox

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


def test_crypto_alerts_dag_run_sends_the_variable_rules_event(
    airflow_db: StackConfig,
    alert_db: psycopg.Connection,
    alert_channel: tuple[Inbox, Inbox],
    dbt: Callable[..., Any],
    insert_quote: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    mails, hooks = alert_channel
    monkeypatch.setenv("MOONWATCH_WAREHOUSE_URL", airflow_db.warehouse_url)
    rule = {
        "id": "btc-above-10",
        "kind": "price_cross",
        "coins": [1],
        "currency": "USD",
        "direction": "above",
        "level": 10,
    }
    monkeypatch.setenv("AIRFLOW_VAR_MOONWATCH_ALERT_RULES", json.dumps({"rules": [rule]}))
    insert_quote(1, 42.0, datetime.now(UTC) - timedelta(minutes=1))
    dbt("run", "--full-refresh", "--select", "+alert_conditions", "alert_events")

    bag = DagBag(dag_folder=str(DAGS_DIR / "crypto_alerts.py"))
    assert bag.import_errors == {}
    run = bag.dags["crypto_alerts"].test()

    assert run.state == "success"
    assert [m["subject"] for m in mails.items] == ["Moonwatch alert: BTC price above 10.00 USD"]
    assert [h["json"]["title"] for h in hooks.items] == [mails.items[0]["subject"]]
    # The file's rules were synced beside the Variable's (its stale and move rules watch BTC).
    synced = {row[0] for row in alert_db.execute("select rule_id from raw.alert_rules")}
    assert {"btc-above-10", "quotes-stale", "big-move-10m"} <= synced
