"""The paced producer on the real warehouse: its turn comes from raw.cmc_credit_calls, its
decision lands in raw.cmc_credit_pace, and `make status` prints cadence, credits used and left."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from moonwatch.pipeline import credit_schedules, fetch_and_produce_quotes
from moonwatch.settings import load_settings
from moonwatch.sources.credits import NotYourTurnError, pace
from moonwatch.sources.simulator import SimulatorServer
from moonwatch.stack.cli import credits_note
from moonwatch.stack.config import StackConfig
from moonwatch.warehouse.credits import PostgresCallLog, describe_pace, read_pace

pytestmark = pytest.mark.integration


@pytest.fixture
def credit_tables(warehouse: psycopg.Connection) -> Iterator[psycopg.Connection]:
    tables = "raw.cmc_credit_ledger, raw.cmc_credit_calls, raw.cmc_credit_pace"
    warehouse.execute(f"truncate {tables}")
    yield warehouse
    warehouse.execute(f"truncate {tables}")


def test_paced_producer_records_its_pace_and_skips_until_its_turn(
    market_simulator: SimulatorServer,
    kafka: str,
    make_topic: Callable[[], str],
    credit_tables: psycopg.Connection,
    warehouse_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "CMC_API_KEY": "marker-key-0123456789",
        "CMC_BASE_URL": market_simulator.url,
        "MOONWATCH_WAREHOUSE_URL": warehouse_url,
        "MOONWATCH_TOPIC": make_topic(),
        "MOONWATCH_CMC_MONTHLY_CREDITS": "10000",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    # The month's first minute: the pace scales with the minutes left in the month, and near its
    # end even the free plan can afford a call a minute (no stretch to see).
    turn = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    assert fetch_and_produce_quotes(settings, turn=turn)["delivered"] == 10

    row = read_pace(credit_tables, "coinmarketcap")
    assert row is not None and row.last_quotes_call_at == turn
    # The free plan cannot pay for every schedule at full speed: all of them stretch alike.
    expected = pace(credit_schedules(settings, 10), 10_000, 0, turn)
    assert expected.stretch is not None and expected.stretch > 1
    quotes, listings = expected.stretch, 15 * expected.stretch
    assert (row.quotes_every_minutes, row.listings_every_minutes) == (quotes, listings)
    assert describe_pace(row).startswith(
        f"quotes every {quotes} minutes, listings every {listings} minutes; 1 of 10,000 "
        "credits used in "
    )
    # Two minutes later it is not its turn: skipped with the reason, no call, pace refreshed.
    with pytest.raises(NotYourTurnError, match="last call 2 minute"):
        fetch_and_produce_quotes(settings, turn=turn + timedelta(minutes=2))
    later = read_pace(credit_tables, "coinmarketcap")
    assert later.decided_at == turn + timedelta(minutes=2) and later.last_quotes_call_at == turn
    calls = credit_tables.execute("select job, credits from raw.cmc_credit_calls").fetchall()
    assert calls == [("quotes", 1)]
    assert credit_tables.execute("select sum(credits) from raw.cmc_credit_ledger").fetchone() == (
        1,
    )


def test_make_status_prints_the_simulators_cadence_and_counted_credits(
    simulator_env: SimulatorServer,
    kafka: str,
    make_topic: Callable[[], str],
    credit_tables: psycopg.Connection,
    stack: StackConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOONWATCH_WAREHOUSE_URL", stack.warehouse_url)
    monkeypatch.setenv("MOONWATCH_TOPIC", make_topic())
    assert credits_note(stack) == "no producer run has recorded its pace yet"
    fetch_and_produce_quotes(load_settings())
    note = credits_note(stack)
    assert note.startswith("quotes every minute, listings every 15 minutes; simulator: free, 1 ")


def test_every_scheduled_job_can_be_recorded_in_the_warehouse_call_log(
    credit_tables: psycopg.Connection, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The in-memory log takes any name; raw.cmc_credit_calls checks it. A job whose name the
    # table refuses would fail its task after the API call was paid for.
    monkeypatch.delenv("CMC_API_KEY", raising=False)
    monkeypatch.setenv("MOONWATCH_WAREHOUSE_URL", warehouse_url)
    settings = load_settings()
    log = PostgresCallLog(warehouse_url)
    moment = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
    for schedule in credit_schedules(settings, coins=10):
        log.record_call(schedule.name, "simulator", moment, 1)
        assert log.last_call(schedule.name, "simulator") == moment
