"""The backfill task body against the simulator, the real broker and the real Postgres:
history goes through the live contract and topic, the loader's natural key makes a re-run
change nothing, the credit budget is checked before the call, and a plan without history
gets one clear sentence."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from moonwatch.errors import CreditBudgetExceededError, SourceRejectedError
from moonwatch.history import backfill_quotes, history_windows
from moonwatch.ingest import consume_and_load
from moonwatch.settings import load_settings
from moonwatch.sources.credits import InMemoryCallLog, InMemoryLedgerStore, month_key
from moonwatch.sources.simulator import SimulatorServer, serve_in_thread
from tests.simulator import SIM_TOKEN, sim_control

pytestmark = pytest.mark.integration

HISTORY = "/v2/cryptocurrency/quotes/historical"


def _window() -> tuple[datetime, datetime]:
    """Three whole hours that ended at least an hour ago."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return end - timedelta(hours=3), end


def _load(kafka: str, topic: str, warehouse_url: str, group: str) -> dict[str, int]:
    return consume_and_load(kafka, topic, group, warehouse_url, idle_s=2.0)


def test_backfill_produces_minute_history_that_loads_once(
    simulator_env: SimulatorServer,
    kafka: str,
    make_topic: Callable[[], str],
    warehouse: psycopg.Connection,
    warehouse_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = make_topic()
    monkeypatch.setenv("MOONWATCH_TOPIC", topic)
    settings = load_settings()
    start, end = _window()
    log = InMemoryCallLog()
    summary = backfill_quotes(settings, start, end, "BTC,ETH", ledger_store=InMemoryLedgerStore(),
                              call_log=log)  # fmt: skip
    assert summary["delivered"] == 2 * 180 and summary["interval"] == "1m"
    assert summary["source"] == "simulator" and summary["coins"] == ["BTC", "ETH"]
    # Counted like every call (the simulator is free, but pacing and make status see it):
    # 1 credit to name the coins, 4 for 360 data points.
    assert summary["credits"] == 4 and log.spent("simulator", month_key(datetime.now(UTC))) == 5

    group = f"history-{uuid.uuid4().hex[:8]}"
    first = _load(kafka, topic, warehouse_url, group)
    assert (first["inserted"], first["rejected"]) == (360, 0)
    rows = warehouse.execute(
        "select count(*), count(distinct (coin_id, last_updated)), min(last_updated),"
        " max(last_updated), min(message->>'source'),"
        " bool_and((message->>'fetched_at')::timestamptz > last_updated),"
        " count(message->>'slug'), count(message->>'cmc_rank')"
        " from raw.crypto_quotes where kafka_topic = %s",
        (topic,),
    ).fetchone()
    assert rows == (360, 360, start, end - timedelta(minutes=1), "simulator", True, 360, 0)

    # The same range again (a re-run, or a backfill over what the producer already has):
    # produced again, loaded as nothing new.
    again = backfill_quotes(settings, start, end, "BTC,ETH", ledger_store=InMemoryLedgerStore())
    assert again["delivered"] == 360
    second = _load(kafka, topic, warehouse_url, group)
    assert (second["inserted"], second["duplicates"]) == (0, 360)
    count = warehouse.execute(
        "select count(*) from raw.crypto_quotes where kafka_topic = %s", (topic,)
    ).fetchone()
    assert count == (360,)


@pytest.fixture
def free_plan(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    """A real-key configuration against a simulator metered like the free plan."""
    server = serve_in_thread(control_token=SIM_TOKEN, monthly_credits=10_000)
    monkeypatch.setenv("CMC_API_KEY", "marker-key-0123456789")
    monkeypatch.setenv("CMC_BASE_URL", server.url)
    yield server
    server.stop()


def test_backfill_on_a_plan_without_history_says_which_plan_and_produces_nothing(
    free_plan: SimulatorServer, make_topic: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOONWATCH_TOPIC", make_topic())
    sim_control(free_plan.url, "POST", "/_sim/faults",
                {"status": 403, "error_code": 1006, "path_prefix": HISTORY})  # fmt: skip
    start, end = _window()
    with pytest.raises(SourceRejectedError, match=r"plan Basic \(free\)") as refused:
        backfill_quotes(load_settings(), start, end, "BTC", ledger_store=InMemoryLedgerStore())
    assert "Traceback" not in str(refused.value) and "marker-key" not in str(refused.value)
    assert free_plan.requests[HISTORY] == 1


def test_backfill_checks_the_month_budget_before_asking_for_history(
    free_plan: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day of 10 coins every 5 minutes costs 29 credits; with 20 left (19 once naming the
    coins cost one) it is refused before the history call, with the numbers."""
    monkeypatch.setenv("MOONWATCH_CMC_MONTHLY_CREDITS", "1000")
    store = InMemoryLedgerStore()
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    store.add(month_key(datetime.now(UTC)), 980)  # credits count in the month they are spent
    coins = "BTC,ETH,SOL,BNB,XRP,ADA,DOGE,AVAX,DOT,LINK"
    needs = r"981 of 1,000 used and this call needs 29"
    with pytest.raises(CreditBudgetExceededError, match=needs):
        backfill_quotes(load_settings(), end - timedelta(days=1), end, coins, ledger_store=store)
    assert free_plan.requests[HISTORY] == 0


def test_history_windows_cut_long_ranges_at_the_api_limit() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert history_windows(start, start + timedelta(days=1), "5m", 10) == [
        (start, start + timedelta(days=1, minutes=-5))
    ]
    windows = history_windows(start, start + timedelta(days=10), "1m", 3)
    assert len(windows) == 2 and windows[0][1] == start + timedelta(minutes=9_999)
    assert windows[1] == (start + timedelta(minutes=10_000), start + timedelta(days=10, minutes=-1))
    with pytest.raises(ValueError, match="interval"):
        history_windows(start, start + timedelta(days=1), "7m", 1)
