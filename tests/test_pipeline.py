"""The DAGs' task bodies against the simulator, the real broker and the real Postgres."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import pytest
from pydantic import SecretStr

from moonwatch.errors import CreditBudgetExceededError
from moonwatch.kafka import consume_batches, open_consumer, wait_for_assignment
from moonwatch.messages import parse_quote_message
from moonwatch.pipeline import (
    fetch_and_produce_quotes,
    fetch_quote_messages,
    load_fx,
    load_listings,
)
from moonwatch.settings import load_settings
from moonwatch.sources.credits import InMemoryLedgerStore, month_key
from moonwatch.sources.simulator import SimulatorServer

pytestmark = pytest.mark.integration


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_producer_puts_one_valid_message_per_coin_on_the_topic(
    simulator_env: SimulatorServer,
    kafka: str,
    make_topic: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = make_topic()
    settings = _settings(monkeypatch, MOONWATCH_TOPIC=topic, MOONWATCH_SYMBOLS="BTC,ETH,SOL,id:52")
    summary = fetch_and_produce_quotes(settings, ledger_store=InMemoryLedgerStore())
    assert summary["delivered"] == 4 and summary["source"] == "simulator"

    consumer = open_consumer(kafka, f"reader-{topic}", topic)
    wait_for_assignment(consumer)
    records = [r for batch in consume_batches(consumer, idle_s=2) for r in batch]
    consumer.close()
    assert len(records) == 4
    messages = {int(r.key): parse_quote_message(r.value) for r in records}
    assert set(messages) == {1, 1027, 5426, 52}
    assert {m.symbol for m in messages.values()} == {"BTC", "ETH", "SOL", "XRP"}
    for message in messages.values():
        assert message.source == "simulator" and message.quote_currency == "USD"
        assert message.price > 0 and message.fetched_at >= message.last_updated
    raw = json.loads(records[0].value)
    assert raw["schema_version"] == 1


def test_fetched_at_is_stamped_after_the_source_answered(
    simulator_env: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stamp taken before the call precedes the source's last_updated whenever the call
    # crosses a minute boundary; recording when the simulator built its answer makes that
    # ordering checkable on every run, not once a minute.
    answered: list[datetime] = []
    real_clock = simulator_env.market.clock

    def recording_clock() -> datetime:
        now = real_clock()
        answered.append(now)
        return now

    monkeypatch.setattr(simulator_env.market, "clock", recording_clock)
    settings = _settings(monkeypatch, MOONWATCH_SYMBOLS="BTC,ETH")
    messages = fetch_quote_messages(settings, ledger_store=InMemoryLedgerStore())
    assert answered, "the simulator's clock was never read; the test no longer sees the call"
    assert {m.symbol for m in messages} == {"BTC", "ETH"}
    assert all(m.fetched_at >= max(answered) for m in messages)


def test_producer_refuses_to_call_when_the_month_budget_is_spent(
    simulator_env: SimulatorServer, kafka: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(
        monkeypatch, CMC_API_KEY="marker-key-0123456789", MOONWATCH_CMC_MONTHLY_CREDITS="100"
    )
    assert settings.cmc_api_key == SecretStr("marker-key-0123456789")
    store = InMemoryLedgerStore()
    store.add(month_key(datetime.now(UTC)), 100)
    with simulator_env.lock:
        before = sum(simulator_env.requests.values())
    with pytest.raises(CreditBudgetExceededError, match="budget") as refused:
        fetch_and_produce_quotes(settings, ledger_store=store)
    with simulator_env.lock:
        assert sum(simulator_env.requests.values()) == before  # no call was made
    assert "marker-key" not in str(refused.value)


def test_listings_snapshot_lands_once_per_snapshot(
    simulator_env: SimulatorServer,
    warehouse: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(monkeypatch, MOONWATCH_LISTINGS_LIMIT="50")
    summary = load_listings(settings, ledger_store=InMemoryLedgerStore())
    assert summary["coins"] == 50 and summary["inserted"] == 50
    rows = warehouse.execute(
        "select count(*), count(distinct snapshot_at), min(source) from raw.crypto_listings"
    ).fetchone()
    assert rows == (50, 1, "simulator")
    top = warehouse.execute(
        "select coin->>'symbol' from raw.crypto_listings order by (coin->>'cmc_rank')::int limit 1"
    ).fetchone()
    assert top == ("BTC",)


def test_fx_rates_load_is_idempotent_and_includes_usd(
    simulator_env: SimulatorServer, warehouse: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(monkeypatch)
    first = load_fx(settings)
    second = load_fx(settings)
    assert first == second and first["currencies"] >= 6
    rates = dict(warehouse.execute("select currency, rate_per_usd from raw.fx_rates").fetchall())
    assert rates["USD"] == 1
    assert {"EUR", "SEK", "NOK", "DKK", "GBP"} <= set(rates)
    assert warehouse.execute("select count(*) from raw.fx_rates").fetchone()[0] == len(rates)
