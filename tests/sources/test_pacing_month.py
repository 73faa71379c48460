"""A whole month of paced polling against the simulator over HTTP, with the clock driven.

The simulator is metered like a small plan (it answers 1010 once its month's answers have cost
the budget) and counts what every answer cost; the producer, the listings snapshot and the
reconciliation run on their own schedules, every minute of April 2026, through the same task
bodies the DAGs call. Nothing sleeps: the clock jumps a minute per turn.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import requests

from moonwatch.pacing import QUOTES_JOB, RECONCILE_JOB
from moonwatch.pipeline import charge_and_fetch_quotes, fetch_quote_messages, load_listings
from moonwatch.settings import load_settings
from moonwatch.sources.credits import InMemoryCallLog, InMemoryLedgerStore, NotYourTurnError
from moonwatch.sources.simulator import SimulatorServer, serve_in_thread

pytestmark = pytest.mark.integration

MONTH_START = datetime(2026, 4, 1, tzinfo=UTC)
MONTH_END = datetime(2026, 5, 1, tzinfo=UTC)
BUDGET = 400


@pytest.fixture
def metered() -> Iterator[tuple[SimulatorServer, list[datetime]]]:
    now = [MONTH_START]
    server = serve_in_thread(clock=lambda: now[0], monthly_credits=BUDGET)
    yield server, now
    server.stop()


def test_paced_schedules_spread_a_small_budget_over_the_whole_month(
    metered: tuple[SimulatorServer, list[datetime]],
    warehouse: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, now = metered
    for name, value in {
        "CMC_API_KEY": "marker-key-0123456789",
        "CMC_BASE_URL": server.url,
        "MOONWATCH_CMC_MONTHLY_CREDITS": str(BUDGET),
        "MOONWATCH_SYMBOLS": "BTC,ETH,SOL,BNB,XRP,ADA,DOGE,AVAX,DOT,LINK",
        "MOONWATCH_LISTINGS_LIMIT": "200",
        "MOONWATCH_LISTINGS_EVERY_MINUTES": "15",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    store, log = InMemoryLedgerStore(), InMemoryCallLog()
    polls: list[datetime] = []
    minute = MONTH_START
    while minute < MONTH_END:
        now[0] = minute + timedelta(seconds=3)  # the task starts a few seconds into its minute
        try:
            fetch_quote_messages(settings, ledger_store=store, call_log=log, turn=minute)
            polls.append(minute)
        except NotYourTurnError:
            pass
        if minute.minute % 15 == 0:
            with contextlib.suppress(NotYourTurnError):
                load_listings(settings, store, call_log=log, turn=minute)
        if minute.minute == 0:
            with contextlib.suppress(NotYourTurnError):
                charge_and_fetch_quotes(
                    settings, ledger_store=store, call_log=log, job=RECONCILE_JOB, turn=minute
                )
        minute += timedelta(minutes=1)

    # Within budget by the simulator's own count, which agrees with the ledger and the log.
    info = requests.get(f"{server.url}/v1/key/info", timeout=10).json()["data"]
    used = info["usage"]["current_month"]["credits_used"]
    assert used <= BUDGET
    assert used == store.get("2026-04") == log.spent("coinmarketcap", "2026-04")
    assert server.requests["/v2/cryptocurrency/quotes/latest"] + server.requests[
        "/v1/cryptocurrency/quotes/latest"
    ] >= len(polls)
    # Spread evenly, and never dry: the gaps stay close to the average and the last poll is
    # about one gap before the month ends (a producer that stops on a spent budget would
    # leave the last three weeks empty).
    gaps = [(b - a).total_seconds() / 60 for a, b in itertools.pairwise(polls)]
    average = (MONTH_END - MONTH_START).total_seconds() / 60 / len(polls)
    assert len(polls) > BUDGET // 2
    assert max(gaps) <= 1.5 * average
    assert (MONTH_END - polls[-1]).total_seconds() / 60 <= 1.5 * average
    listings = [at for job, _, at, _ in log.calls if job == "listings"]
    assert len(listings) >= 5 and listings[-1] > MONTH_END - timedelta(days=10)
    assert {job for job, *_ in log.calls} == {
        QUOTES_JOB,
        "listings",
        "listings_by_volume",
        RECONCILE_JOB,
    }


def test_free_plan_polls_every_six_minutes(
    metered: tuple[SimulatorServer, list[datetime]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default free plan: 52,560 credits of schedules (quotes 43,200, listings 5,760, the
    volume listing 2,880, reconciliation 720) over 10,000 stretch by 6."""
    server, now = metered
    monkeypatch.setenv("CMC_API_KEY", "marker-key-0123456789")
    monkeypatch.setenv("CMC_BASE_URL", server.url)
    monkeypatch.setenv("MOONWATCH_CMC_MONTHLY_CREDITS", "10000")
    settings = load_settings()
    store, log = InMemoryLedgerStore(), InMemoryCallLog()
    polls = []
    for offset in range(12):
        minute = MONTH_START + timedelta(minutes=offset)
        now[0] = minute
        try:
            fetch_quote_messages(settings, ledger_store=store, call_log=log, turn=minute)
            polls.append(offset)
        except NotYourTurnError as skipped:
            assert "every 6 minutes" in str(skipped) and "credits used" in str(skipped)
    assert polls == [0, 6]
