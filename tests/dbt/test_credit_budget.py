"""marts.credit_budget: the producer's pace as the dashboard reads it (a dbt view over
raw.cmc_credit_pace, readable by the dashboard's read-only role)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from moonwatch.dbt.cosmos import REFERENCE_SELECTION
from moonwatch.sources.credits import Schedule, pace
from moonwatch.stack.config import StackConfig
from moonwatch.warehouse.credits import save_pace

pytestmark = pytest.mark.integration


def test_credit_budget_shows_cadence_used_and_left_to_the_dashboard_role(
    dbt, warehouse: psycopg.Connection, pg: StackConfig
) -> None:
    warehouse.execute("truncate raw.cmc_credit_pace")
    now = datetime(2026, 4, 16, 12, 0, tzinfo=UTC)
    schedules = [Schedule("quotes", 1, 10), Schedule("listings", 15, 200)]
    decision = pace(schedules, budget=10_000, spent=6_000, now=now)
    every = decision.every_minutes(schedules[0])
    listings_every = decision.every_minutes(schedules[1])
    summary = decision.describe(schedules[0])
    save_pace(warehouse, "coinmarketcap", now, decision, every, listings_every, now, summary)
    assert "credit_budget" in REFERENCE_SELECTION  # built with the listings marts
    dbt("build", "--select", "credit_budget")
    with psycopg.connect(pg.dashboard_db_url, autocommit=True) as dashboard:
        row = dashboard.execute(
            "select source, is_simulated, credits_budget, credits_used, credits_left,"
            " quotes_every_minutes, listings_every_minutes, is_paused, month"
            " from marts.credit_budget"
        ).fetchone()
    assert row == ("coinmarketcap", False, 10_000, 6_000, 4_000, every, 15 * every, False,
                   "2026-04")  # fmt: skip
    assert every is not None and every > 1
    warehouse.execute("truncate raw.cmc_credit_pace")
