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
    InMemoryCallLog,
    InMemoryLedgerStore,
    NotYourTurnError,
    Schedule,
    check_schedule,
    credits_per_call,
    ensure_turn,
    historical_credits,
    minutes_left_in_month,
    month_end,
    month_key,
    monthly_credits,
    pace,
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


# -- pacing ----------------------------------------------------------------------------------

FREE_PLAN = [
    Schedule("quotes", 1, 10),
    Schedule("listings", 15, 200),
    Schedule("reconciliation", 60, 10),
]


def test_pace_spreads_the_free_plan_five_times_slower():
    """43,200 + 5,760 + 720 credits of schedules against 10,000: every schedule runs 5x less
    often (quotes every 5 minutes, listings every 75), which fits."""
    decision = pace(FREE_PLAN, budget=10_000, spent=0, now=datetime(2026, 4, 1, tzinfo=UTC))
    assert decision.minutes_left == 30 * 1440 and decision.needed == 49_680
    assert decision.stretch == 5
    assert [decision.every_minutes(s) for s in FREE_PLAN] == [5, 75, 300]
    spend = sum(
        credits_per_call(s.coins) * decision.minutes_left / decision.every_minutes(s)
        for s in FREE_PLAN
    )
    assert spend <= 10_000
    assert "quotes every 5 minutes; 0 of 10,000 credits used" in decision.describe(FREE_PLAN[0])


def test_pace_runs_at_full_speed_when_the_plan_allows_and_for_the_simulator():
    now = datetime(2026, 4, 1, tzinfo=UTC)
    assert pace(FREE_PLAN, budget=110_000, spent=0, now=now).stretch == 1
    simulated = pace(FREE_PLAN, budget=10_000, spent=9_999, now=now, simulated=True)
    assert simulated.every_minutes(FREE_PLAN[0]) == 1
    assert "simulator: free" in simulated.describe(FREE_PLAN[0])


def test_pace_slows_down_when_the_month_ran_ahead_and_stops_only_when_nothing_fits():
    mid = datetime(2026, 4, 16, tzinfo=UTC)  # 15 days left
    behind = pace(FREE_PLAN, budget=10_000, spent=2_000, now=mid)
    ahead = pace(FREE_PLAN, budget=10_000, spent=8_000, now=mid)
    assert behind.stretch is not None and ahead.stretch is not None
    assert ahead.stretch > behind.stretch
    spent = pace(FREE_PLAN, budget=10_000, spent=10_000, now=mid)
    assert spent.stretch is None and spent.every_minutes(FREE_PLAN[0]) is None
    with pytest.raises(NotYourTurnError, match=r"paused until the 1st.*2026-05-01"):
        ensure_turn(spent, FREE_PLAN[0], None, mid)


def test_ensure_turn_counts_whole_minutes_and_lets_a_retry_of_the_same_turn_through():
    now = datetime(2026, 4, 1, 12, 5, 2, tzinfo=UTC)
    decision = pace(FREE_PLAN, budget=10_000, spent=0, now=now)  # every 5 minutes
    ensure_turn(decision, FREE_PLAN[0], None, now)  # never called: go
    ensure_turn(decision, FREE_PLAN[0], datetime(2026, 4, 1, 12, 0, 59, tzinfo=UTC), now)
    ensure_turn(decision, FREE_PLAN[0], datetime(2026, 4, 1, 12, 5, tzinfo=UTC), now)  # retry
    with pytest.raises(NotYourTurnError, match=r"last call 4 minute\(s\) ago, next in 1"):
        ensure_turn(decision, FREE_PLAN[0], datetime(2026, 4, 1, 12, 1, tzinfo=UTC), now)


@pytest.mark.parametrize(
    ("moment", "left"),
    [
        (datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC), 1),
        (datetime(2026, 2, 1, tzinfo=UTC), 28 * 1440),
        (datetime(2026, 4, 30, 12, 0, tzinfo=UTC), 720),
    ],
)
def test_minutes_left_in_month_rolls_over_december(moment, left):
    assert minutes_left_in_month(moment) == left
    assert month_end(datetime(2026, 12, 5, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)


def test_historical_calls_cost_a_credit_per_100_points():
    assert historical_credits(10 * 288) == 29  # a day of 10 coins every 5 minutes
    assert historical_credits(10 * 1440, converts=2) == 145
    assert historical_credits(1) == 1


def test_in_memory_call_log_keeps_the_last_call_and_the_month_per_source():
    log = InMemoryCallLog()
    log.record_call("quotes", "coinmarketcap", datetime(2026, 4, 30, 23, 59, tzinfo=UTC), 1)
    log.record_call("quotes", "coinmarketcap", datetime(2026, 5, 1, 0, 4, tzinfo=UTC), 2)
    log.record_call("quotes", "simulator", datetime(2026, 5, 1, 0, 5, tzinfo=UTC), 7)
    assert log.spent("coinmarketcap", "2026-05") == 2 and log.spent("simulator", "2026-05") == 7
    assert log.last_call("quotes", "coinmarketcap") == datetime(2026, 5, 1, 0, 4, tzinfo=UTC)
    assert log.last_call("listings", "coinmarketcap") is None


def test_a_paced_skip_is_a_skipped_task_not_a_failure():
    from airflow.sdk.exceptions import AirflowSkipException

    from moonwatch.airflow_glue import fail_without_retry_on_permanent_errors

    with (
        pytest.raises(AirflowSkipException, match="next in 3"),
        fail_without_retry_on_permanent_errors(),
    ):
        raise NotYourTurnError("quotes every 5 minutes: last call 2 minute(s) ago, next in 3")
