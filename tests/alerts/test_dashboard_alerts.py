"""The dashboard's Alerts section: the newest events of the page's source and every DAG
failure, read by the dashboard's read-only role from marts.alert_events (a real app run on
the real warehouse, Streamlit's AppTest)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.dashboard.conftest import (  # noqa: F401
    clear_streamlit_caches,
    dashboard_env,
    loader,
    small_marts,
)

pytestmark = [pytest.mark.integration]

APP_PATH = Path(__file__).resolve().parents[2] / "streamlit_app" / "app.py"


def _event(conn: psycopg.Connection, title: str, minutes_ago: int, **columns: Any) -> None:
    row = {
        "rule_id": "r",
        "kind": "price_cross",
        "subject": title,
        "open_message": f"{title}\n\nbody",
        "detail": Jsonb({"title": title}),
        **columns,
    }
    names = ", ".join(row)
    conn.execute(
        f"insert into raw.alert_events ({names}, opened_at)"  # trusted-sql: test's own names
        f" values ({', '.join(['%s'] * len(row))}, now() - make_interval(mins => %s))",
        [*row.values(), minutes_ago],
    )


@pytest.fixture
def page(
    small_marts: Any,  # noqa: F811
    dashboard_env: str,  # noqa: F811
    alert_db: psycopg.Connection,
    dbt: Callable[..., Any],
) -> Callable[[], Any]:
    """Runs the app on the hand-made marts, with the dbt view marts.alert_events in place."""
    from streamlit.testing.v1 import AppTest

    dbt("run", "--select", "alert_events")

    def _run() -> Any:
        at = AppTest.from_file(str(APP_PATH), default_timeout=60).run()
        assert not at.exception
        return at

    return _run


def _alerts_table(at: Any) -> Any:
    found = [d.value for d in at.dataframe if "alert" in d.value.columns]
    assert found, "no Alerts table on the page"
    return found[0]


def test_dashboard_lists_recent_alerts_of_its_source_and_dag_failures(
    page: Callable[[], Any], alert_db: psycopg.Connection
) -> None:
    _event(
        alert_db,
        "Moonwatch alert: BTC price above 100.00 USD",
        10,
        source="simulator",
        coin_id=1,
        symbol="BTC",
        quote_currency="USD",
    )
    alert_db.execute(
        "update raw.alert_events set open_sent_at = opened_at, resolved_at = now(),"
        " resolve_message = 'x', resolve_sent_at = now()"
    )
    _event(
        alert_db,
        "Moonwatch alert: DAG crypto_fx_load failed",
        3,
        kind="dag_failure",
        dag_id="crypto_fx_load",
        last_error="no alert channel: the Airflow connection 'moonwatch_alerts' does not exist",
    )
    _event(alert_db, "Moonwatch alert: ETH real-market alert", 1, source="coinmarketcap")

    table = _alerts_table(page())
    # Newest change first; the real-market event stays off a page that shows simulated data.
    assert list(table["alert"]) == ["BTC price above 100.00 USD", "DAG crypto_fx_load failed"]
    assert list(table["status"]) == ["resolved", "open"]
    assert list(table["sent"]) == ["yes", "not sent"]
    assert "does not exist" in table["why not sent"].iloc[1]


def test_dashboard_says_how_to_set_up_alerts_when_there_are_none(
    page: Callable[[], Any],
) -> None:
    at = page()
    assert any("No alerts yet" in c.value and "alerts.yml" in c.value for c in at.caption)
