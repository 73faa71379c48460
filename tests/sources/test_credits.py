"""Credit arithmetic, schedule checks and the monthly ledger."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moonwatch.errors import CreditBudgetExceededError
from moonwatch.sources.credits import (
    CreditLedger,
    InMemoryLedgerStore,
    JsonFileLedgerStore,
    Schedule,
    check_schedule,
    credits_per_call,
    month_key,
    monthly_credits,
)


@pytest.mark.parametrize(
    ("coins", "converts", "expected"),
    [(0, 1, 1), (1, 1, 1), (10, 1, 1), (100, 1, 1), (101, 1, 2), (200, 1, 2), (5000, 1, 50),
     (10, 2, 2), (250, 3, 5)],
)  # fmt: skip
def test_credits_per_call_rounds_up_per_100_coins(coins, converts, expected):
    assert credits_per_call(coins, converts) == expected


@given(st.integers(min_value=1, max_value=100_000))
def test_credits_per_call_covers_every_coin(coins):
    credits = credits_per_call(coins)
    assert credits * 100 >= coins > (credits - 1) * 100


def test_monthly_credits_every_minute_ten_coins_is_43200():
    assert monthly_credits(calls_per_day=1440, credits_each=credits_per_call(10)) == 43_200
    assert Schedule("quotes", every_minutes=1, coins=10).monthly_credits == 43_200


def test_check_schedule_warns_when_over_budget(caplog):
    check = check_schedule(Schedule("quotes", every_minutes=1, coins=10), budget=10_000)
    assert not check.ok and check.monthly_credits == 43_200
    assert "43,200" in check.message and "10,000" in check.message
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_check_schedule_sums_schedules_within_budget():
    schedules = [Schedule("quotes", 5, 10), Schedule("listings", 120, 200)]
    check = check_schedule(schedules, budget=10_000)
    assert check.ok and check.monthly_credits == 8_640 + 720


def _clock(moments):
    return lambda: moments[0]


def test_ledger_refuses_when_month_spent():
    now = [datetime(2025, 5, 31, 23, 0, tzinfo=UTC)]
    ledger = CreditLedger(InMemoryLedgerStore(), monthly_budget=5, clock=_clock(now))
    ledger.ensure_available(1)
    assert ledger.record(4) == 4
    ledger.ensure_available(1)
    ledger.record(1)
    with pytest.raises(CreditBudgetExceededError, match=r"2025-05 is spent: 5 of 5"):
        ledger.ensure_available(1)
    assert ledger.remaining() == 0


def test_ledger_months_are_utc_calendar_months():
    now = [datetime(2025, 5, 31, 23, 59, tzinfo=UTC)]
    ledger = CreditLedger(InMemoryLedgerStore(), monthly_budget=5, clock=_clock(now))
    ledger.record(5)
    now[0] = datetime(2025, 6, 1, 0, 0, tzinfo=UTC)
    ledger.ensure_available(5)
    assert ledger.spent() == 0
    assert month_key(datetime.fromisoformat("2025-06-01T01:00:00+02:00")) == "2025-05"


def test_ledger_simulated_never_refuses(caplog):
    caplog.set_level(logging.INFO)
    ledger = CreditLedger(InMemoryLedgerStore(), monthly_budget=0, simulated=True)
    ledger.ensure_available(100)
    assert ledger.record(100) == 0 and ledger.spent() == 0
    assert "not enforced" in caplog.text


def test_json_file_store_persists_between_instances(tmp_path):
    path = tmp_path / "state" / "credits.json"
    JsonFileLedgerStore(path).add("2025-05", 3)
    store = JsonFileLedgerStore(path)
    assert store.add("2025-05", 4) == 7 and store.get("2025-05") == 7 and store.get("2025-06") == 0
    ledger = CreditLedger(store, 7, clock=lambda: datetime(2025, 5, 2, tzinfo=UTC))
    with pytest.raises(CreditBudgetExceededError):
        ledger.ensure_available()
