"""Alert events end to end on the real services: quotes in raw → dbt builds the quote marts and
marts.alert_conditions → crypto_alerts' evaluation → real SMTP and webhook servers on loopback.

Checks what a user relies on: the message names the coin, the rule, the value, the currency
and the time; a condition that keeps holding is sent once; its end is sent once as RESOLVED;
a delivery that fails is retried, never duplicated; without a channel events are still kept.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from moonwatch.alerts import AlertDeliveryError, run_alerts
from moonwatch.stack.config import StackConfig
from moonwatch.stack.process import free_port
from tests.alerts.conftest import Inbox

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ALERT_MODELS = ("+alert_conditions", "alert_events")
SECRET = "Wh00k-S3cret-9f2"


@pytest.fixture
def build(dbt: Callable[..., Any]) -> Callable[[], None]:
    """Rebuild the quote marts and the alert views from raw, as crypto_transform does. The
    first call of a test starts from empty marts (earlier tests left rows in them)."""
    calls = {"n": 0}

    def _build() -> None:
        refresh = ("--full-refresh",) if calls["n"] == 0 else ()
        dbt("run", *refresh, "--select", *ALERT_MODELS)
        calls["n"] += 1

    _build()
    return _build


@pytest.fixture
def rules_file(tmp_path: Path) -> Callable[[str], Path]:
    def _write(text: str) -> Path:
        path = tmp_path / "alerts.yml"
        path.write_text(text)
        return path

    return _write


def _events(conn: psycopg.Connection) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("select * from raw.alert_events order by event_id").fetchall()


def _texts(mails: Inbox, hooks: Inbox) -> tuple[list[str], list[str]]:
    """Each channel's messages as 'title\\nbody', to check both carry the same content."""
    mail_texts = [f"{m['subject']}\n{m['body']}" for m in mails.items]
    hook_texts = [f"{h['json']['title']}\n{h['json']['message']}" for h in hooks.items]
    return mail_texts, hook_texts


def test_alerts_price_cross_sent_once_while_it_holds_then_resolved_once(
    alert_db: psycopg.Connection,
    alert_channel: tuple[Inbox, Inbox],
    build: Callable[[], None],
    insert_quote: Callable[..., None],
    rules_file: Callable[[str], Path],
    warehouse_url: str,
    pg: StackConfig,
) -> None:
    mails, hooks = alert_channel
    path = rules_file(
        "rules:\n  - {id: btc-above-100, kind: price_cross, coins: [1], currency: USD,"
        " direction: above, level: 100}\n"
    )

    def evaluate() -> dict[str, Any]:
        return run_alerts(warehouse_url=warehouse_url, variable_text=None, rules_path=path)

    now = datetime.now(UTC).replace(microsecond=0)
    insert_quote(1, 90.0, now - timedelta(minutes=4))
    build()
    assert evaluate()["opened"] == 0 and mails.items == [] and hooks.items == []

    crossed_at = now - timedelta(minutes=3)
    insert_quote(1, 120.5, crossed_at)
    build()
    first = evaluate()
    assert (first["opened"], first["sent"]) == (1, 1)
    assert len(mails.items) == 1 and len(hooks.items) == 1
    assert mails.items[0]["to"] == ["trader@example.com"]
    assert hooks.items[0]["path"] == "/moonwatch-alerts"
    for text in _texts(mails, hooks):
        message = text[0]
        assert message.startswith("Moonwatch alert: BTC price above 100.00 USD")
        assert "BTC (Bitcoin, CoinMarketCap id 1) is at 120.50 USD, above the level 100.00 USD" in (
            message
        )
        assert "Rule: btc-above-100 (price_cross)" in message
        assert f"Quote time: {crossed_at:%Y-%m-%d %H:%M:%S} UTC" in message
        assert "SIMULATED" in message
    assert hooks.items[0]["json"]["type"] == "failure"

    # The condition keeps holding: more evaluations, and newer quotes still above, send nothing.
    assert evaluate()["sent"] == 0
    insert_quote(1, 130.0, now - timedelta(minutes=2))
    build()
    again = evaluate()
    assert (again["active"], again["opened"], again["sent"]) == (1, 0, 0)
    assert len(mails.items) == 1 and len(hooks.items) == 1

    back_at = now - timedelta(minutes=1)
    insert_quote(1, 95.25, back_at)
    build()
    resolved = evaluate()
    assert (resolved["resolved"], resolved["sent"]) == (1, 1)
    assert len(mails.items) == 2 and len(hooks.items) == 2
    for text in (t[1] for t in _texts(mails, hooks)):
        assert text.startswith("Moonwatch RESOLVED: BTC price above 100.00 USD")
        assert "is at 95.25 USD, no longer above 100.00 USD" in text
        assert f"Quote time: {back_at:%Y-%m-%d %H:%M:%S} UTC" in text
        assert "It had been open since" in text
    assert hooks.items[1]["json"]["type"] == "success"
    assert evaluate()["sent"] == 0 and len(mails.items) == 2

    [event] = _events(alert_db)
    assert event["rule_id"] == "btc-above-100" and event["subject"] == "simulator:1:USD"
    assert event["open_value"] == 120.5 and event["resolve_value"] == 95.25
    assert event["open_sent_at"] and event["resolve_sent_at"] and event["last_error"] is None

    # The dashboard's role reads the same event from marts.alert_events.
    with psycopg.connect(pg.dashboard_db_url, autocommit=True) as reader:
        rows = reader.execute(
            "select status, symbol, title, resolved_at is not null from marts.alert_events"
        ).fetchall()
    assert rows == [("resolved", "BTC", "Moonwatch alert: BTC price above 100.00 USD", True)]


def test_alerts_move_and_stale_rules_from_the_variable_open_and_resolve(
    alert_db: psycopg.Connection,
    alert_channel: tuple[Inbox, Inbox],
    build: Callable[[], None],
    insert_quote: Callable[..., None],
    rules_file: Callable[[str], Path],
    warehouse_url: str,
) -> None:
    mails, hooks = alert_channel
    path = rules_file("rules: []\n")
    variable = json.dumps(
        {
            "rules": [
                {
                    "id": "eth-jump",
                    "kind": "price_move",
                    "coins": [1027],
                    "currency": "USD",
                    "percent": 5,
                    "minutes": 10,
                    "direction": "up",
                },
                {
                    "id": "sol-stale",
                    "kind": "stale",
                    "coins": [5426],
                    "currency": "USD",
                    "minutes": 30,
                },
            ]
        }
    )

    def evaluate() -> dict[str, Any]:
        return run_alerts(warehouse_url=warehouse_url, variable_text=variable, rules_path=path)

    now = datetime.now(UTC).replace(microsecond=0)
    insert_quote(1027, 100.0, now - timedelta(minutes=6))
    insert_quote(1027, 108.0, now - timedelta(minutes=2))
    insert_quote(5426, 20.0, now - timedelta(minutes=120))
    build()
    first = evaluate()
    assert (first["opened"], first["sent"]) == (2, 2)
    titles = sorted(m["subject"] for m in mails.items)
    assert titles == [
        "Moonwatch alert: ETH moved up 5% or more within 10 min",
        "Moonwatch alert: SOL USD quotes older than 30 min",
    ]
    bodies = {m["subject"]: m["body"] for m in mails.items}
    assert (
        "ETH (Ethereum, CoinMarketCap id 1027) moved +8.00% within 10 minutes: from 100.00 "
        in (bodies[titles[0]])
    )
    assert (
        "to 108.00 USD" in bodies[titles[0]] and "Rule: eth-jump (price_move)" in bodies[titles[0]]
    )
    age = re.search(r"quote in USD is (\d+) minutes old", bodies[titles[1]])
    assert age and int(age.group(1)) >= 120
    assert "the rule allows 30" in bodies[titles[1]]
    assert sorted(h["json"]["title"] for h in hooks.items) == titles
    assert evaluate()["sent"] == 0

    insert_quote(1027, 101.0, now - timedelta(minutes=1))  # +1% on the window's low: over
    insert_quote(5426, 20.5, now)  # fresh again
    build()
    resolved = evaluate()
    assert (resolved["resolved"], resolved["sent"]) == (2, 2)
    assert sorted(m["subject"] for m in mails.items[2:]) == [
        t.replace("alert:", "RESOLVED:") for t in titles
    ]
    assert all(e["resolved_at"] and e["resolve_sent_at"] for e in _events(alert_db))


def test_alerts_failed_delivery_is_retried_once_and_never_duplicated(
    alert_db: psycopg.Connection,
    alert_channel: tuple[Inbox, Inbox],
    webhook_server: tuple[int, Inbox],
    build: Callable[[], None],
    insert_quote: Callable[..., None],
    rules_file: Callable[[str], Path],
    warehouse_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    _, hooks = alert_channel
    path = rules_file(
        "rules:\n  - {id: btc-below-50, kind: price_cross, coins: [1], currency: USD,"
        " direction: below, level: 50}\n"
    )
    nobody = free_port()  # nothing listens there: the webhook cannot be delivered
    monkeypatch.setenv(
        "AIRFLOW_CONN_MOONWATCH_ALERTS",
        json.dumps(
            {
                "conn_type": "apprise",
                "extra": {"config": {"path": f"json://bot:{SECRET}@127.0.0.1:{nobody}/x"}},
            }
        ),
    )
    insert_quote(1, 42.0, datetime.now(UTC) - timedelta(minutes=1))
    build()
    with pytest.raises(AlertDeliveryError, match="next run retries them") as raised:
        run_alerts(warehouse_url=warehouse_url, variable_text=None, rules_path=path)
    assert f":{nobody}" not in str(raised.value)  # the destination never reaches a message
    assert SECRET not in str(raised.value)
    assert "Connection error occurred sending JSON" in caplog.text  # Apprise's log is captured
    [event] = _events(alert_db)
    assert event["open_sent_at"] is None and "could not deliver" in event["last_error"]

    web_port = webhook_server[0]
    monkeypatch.setenv(
        "AIRFLOW_CONN_MOONWATCH_ALERTS",
        json.dumps(
            {
                "conn_type": "apprise",
                "extra": {"config": {"path": f"json://127.0.0.1:{web_port}/x"}},
            }
        ),
    )
    retried = run_alerts(warehouse_url=warehouse_url, variable_text=None, rules_path=path)
    assert (retried["opened"], retried["sent"]) == (0, 1)
    assert [h["json"]["title"] for h in hooks.items] == [
        "Moonwatch alert: BTC price below 50.00 USD"
    ]
    assert run_alerts(warehouse_url=warehouse_url, variable_text=None, rules_path=path)["sent"] == 0
    [event] = _events(alert_db)
    assert event["open_sent_at"] is not None and event["last_error"] is None
    # The credential in the destination URL reached no log line, message or table row.
    assert SECRET not in caplog.text and SECRET not in json.dumps(event, default=str)


def test_alerts_without_a_channel_are_recorded_and_say_how_to_add_one(
    alert_db: psycopg.Connection,
    build: Callable[[], None],
    insert_quote: Callable[..., None],
    rules_file: Callable[[str], Path],
    warehouse_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_MOONWATCH_ALERTS", raising=False)
    path = rules_file(
        "rules:\n  - {id: btc-above-1, kind: price_cross, coins: [1], currency: USD,"
        " direction: above, level: 1}\n"
        "  - {id: btc-in-eur, kind: stale, coins: [1], currency: EUR, minutes: 5}\n"
        "  - {id: eth-above-1, kind: price_cross, coins: [1027], currency: USD,"
        " direction: above, level: 1}\n"
    )
    insert_quote(1, 42.0, datetime.now(UTC) - timedelta(minutes=1))
    build()
    # As after an upgrade: the quote marts exist, the dashboard's alert view not yet.
    alert_db.execute("drop view marts.alert_events")
    result = run_alerts(warehouse_url=warehouse_url, variable_text=None, rules_path=path)
    assert result["opened"] == 1 and result["sent"] == 0 and result["no_channel"]
    # A rule on a coin or currency with no quotes is named, not silently idle.
    assert result["without_quotes"] == ["btc-in-eur (coin 1, EUR)", "eth-above-1 (coin 1027, USD)"]
    [row] = alert_db.execute("select status, delivery_error from marts.alert_events").fetchall()
    assert row[0] == "open"
    assert "connection 'moonwatch_alerts' does not exist" in row[1]
