"""The DAGs' task bodies against the simulator, the real broker and the real Postgres."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from moonwatch.kafka import consume_batches, open_consumer, wait_for_assignment
from moonwatch.messages import parse_quote_message
from moonwatch.pipeline import (
    fetch_and_produce_quotes,
    fetch_quote_messages,
    load_fx,
    load_listings,
    load_quotes,
)
from moonwatch.settings import load_settings
from moonwatch.sources.credits import InMemoryLedgerStore, NotYourTurnError, month_key
from moonwatch.sources.simulator import SimulatorServer
from moonwatch.warehouse.listings import load_listings_snapshot
from tests.factories import listing_coin

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


def test_quote_load_stores_each_produced_quote_once_and_commits_the_group(
    simulator_env: SimulatorServer,
    kafka: str,
    make_topic: Callable[[], str],
    warehouse: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = make_topic()
    settings = _settings(
        monkeypatch,
        MOONWATCH_TOPIC=topic,
        MOONWATCH_SYMBOLS="BTC,ETH",
        MOONWATCH_CONSUMER_GROUP=f"loader-{topic}",
    )
    fetch_and_produce_quotes(settings, ledger_store=InMemoryLedgerStore())
    first = load_quotes(settings)
    # The group's offsets were committed after Postgres: the next run finds nothing waiting.
    again = load_quotes(settings)
    assert (first["inserted"], first["rejected"]) == (2, 0)
    assert (again["inserted"], again["duplicates"]) == (0, 0)
    rows = warehouse.execute(
        "select message->>'symbol', kafka_topic from raw.crypto_quotes order by 1"
    ).fetchall()
    assert rows == [("BTC", topic), ("ETH", topic)]


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


def test_producer_pauses_without_calling_when_the_month_budget_is_spent(
    simulator_env: SimulatorServer, kafka: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paced: a spent month is a skipped run until the 1st, not a failure every minute."""
    settings = _settings(
        monkeypatch, CMC_API_KEY="marker-key-0123456789", MOONWATCH_CMC_MONTHLY_CREDITS="100"
    )
    assert settings.cmc_api_key == SecretStr("marker-key-0123456789")
    store = InMemoryLedgerStore()
    store.add(month_key(datetime.now(UTC)), 100)
    with simulator_env.lock:
        before = sum(simulator_env.requests.values())
    with pytest.raises(NotYourTurnError, match="paused until the 1st") as refused:
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
    assert summary["coins"] == 50 and summary["coins_by_volume"] == 100
    assert summary["inserted"] == 150
    rows = warehouse.execute(
        "select ranked_by, count(*), count(distinct snapshot_at), min(source)"
        " from raw.crypto_listings group by ranked_by order by ranked_by"
    ).fetchall()
    assert rows == [("market_cap", 50, 1, "simulator"), ("volume_24h", 100, 1, "simulator")]
    top = warehouse.execute(
        "select coin->>'symbol' from raw.crypto_listings where ranked_by = 'market_cap'"
        " order by (coin->>'cmc_rank')::int limit 1"
    ).fetchone()
    assert top == ("BTC",)
    # The volume listing is the market's (sort=volume_24h over every coin), not a re-ranking
    # of the market-cap top 50: its top 10 reaches coins the market-cap listing does not hold.
    volume = "(coin->'quote'->'USD'->>'volume_24h')::float8"
    by_volume = warehouse.execute(
        f"select coin_id, {volume} from raw.crypto_listings where ranked_by = 'volume_24h'"
        f" order by {volume} desc nulls last limit 10"
    ).fetchall()
    by_cap = dict(
        warehouse.execute(
            f"select coin_id, {volume} from raw.crypto_listings where ranked_by = 'market_cap'"
        ).fetchall()
    )
    assert {coin for coin, _ in by_volume} - set(by_cap), "volume top 10 inside the cap top 50"
    tenth_in_cap = sorted((v for v in by_cap.values() if v is not None), reverse=True)[9]
    assert by_volume[-1][1] >= tenth_in_cap


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


class _Source(ThreadingHTTPServer):
    """A loopback stand-in for CoinMarketCap and Frankfurter that answers what a test sets."""

    replies: dict[str, tuple[bytes, dict[str, str]]]


class _SourceHandler(BaseHTTPRequestHandler):
    server: _Source

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body, headers = self.server.replies.get(self.path.split("?")[0], (b"{}", {}))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch, warehouse: psycopg.Connection) -> Iterator[_Source]:
    warehouse.execute("truncate raw.crypto_listings_rejected, raw.fx_rates_rejected")
    server = _Source(("127.0.0.1", 0), _SourceHandler)
    server.replies = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.delenv("CMC_API_KEY", raising=False)
    monkeypatch.setenv("CMC_BASE_URL", url)
    monkeypatch.setenv("MOONWATCH_FX_BASE_URL", url)
    yield server
    server.shutdown()
    server.server_close()


def _serve_listings(source: _Source, coins: list[dict[str, Any]]) -> None:
    status = {"error_code": 0, "credit_count": 1, "timestamp": "2026-12-01T00:00:00Z"}
    body = json.dumps({"status": status, "data": coins}).encode()
    source.replies["/v1/cryptocurrency/listings/latest"] = (body, {})


def _staging(conn: psycopg.Connection, model: str) -> list[tuple]:
    """Every row of a staging view, computed with the dbt model's own SQL and casts."""
    path = Path(__file__).parents[1] / "dbt_project" / "models" / "staging" / f"{model}.sql"
    text = re.sub(r"\{\{\s*source\(\s*'raw'\s*,\s*'(\w+)'\s*\)\s*\}\}", r"raw.\1", path.read_text())
    assert "{{" not in text and "{%" not in text, f"{path} has Jinja this helper cannot render"
    return conn.execute(f"select * from (\n{text}\n) as staged").fetchall()


def _listing(coin_id: int, **changes: Any) -> dict[str, Any]:
    coin = listing_coin(coin_id)
    coin["last_updated"] = coin["quote"]["USD"]["last_updated"] = "2026-12-01T00:00:00.000Z"
    return {**coin, **changes}


def _with_price(coin: dict[str, Any], price: Any) -> dict[str, Any]:
    coin["quote"]["USD"]["price"] = price
    return coin


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (_listing(1027, cmc_rank=3_000_000_000), "cmc_rank"),
        (_with_price(_listing(1027), 10**400), "price"),
        (_listing(1027, date_added="yesterday-ish"), "date_added"),
    ],
    ids=["rank-past-integer", "401-digit-price", "date-added-no-timestamp"],
)
def test_listings_row_staging_cannot_read_is_quarantined_not_stored(
    source: _Source,
    warehouse: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    bad: dict[str, Any],
    reason: str,
) -> None:
    _serve_listings(source, [_listing(1), bad])
    summary = load_listings(_settings(monkeypatch), ledger_store=InMemoryLedgerStore())

    # The stand-in answers both listings (by market cap and by volume) with the same coins.
    assert summary["coins"] == 2 and summary["inserted"] == 2
    staged = _staging(warehouse, "stg_crypto_listings")  # the casts read every stored row
    assert [row[0] for row in staged] == [1, 1]
    rejected = warehouse.execute(
        "select source, coin_id, payload, reason from raw.crypto_listings_rejected"
    ).fetchall()
    assert len(rejected) == 2
    kept_source, coin_id, payload, why = rejected[0]
    assert (kept_source, coin_id) == ("simulator", "1027")
    assert reason in why and '"id": 1027' in payload  # nothing is silently lost


def _serve_fx(source: _Source, rates: dict[str, str], simulated: bool = True) -> None:
    listed = ", ".join(f'"{c}": {r}' for c, r in rates.items())  # raw JSON numbers, as sent
    body = f'{{"amount": 1.0, "base": "USD", "date": "2026-11-30", "rates": {{{listed}}}}}'
    headers = {"X-Moonwatch-Simulated": "true"} if simulated else {}
    source.replies["/latest"] = (body.encode(), headers)


FX_OK = {"EUR": "0.92", "SEK": "10.4", "NOK": "10.6", "DKK": "6.9", "GBP": "0.79"}
FX_OK |= {"CHF": "0.88", "JPY": "150.1", "CAD": "1.36", "AUD": "1.52"}


def test_fx_rates_staging_cannot_read_are_quarantined_not_stored(
    source: _Source, warehouse: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve_fx(source, FX_OK | {"EUR": "1" + "0" * 400, "GBP": "1e-400"})
    summary = load_fx(_settings(monkeypatch))

    assert summary["currencies"] == len(FX_OK) + 1 - 2  # USD added, EUR and GBP refused
    staged = {row[1] for row in _staging(warehouse, "stg_fx_rates")}
    assert staged == (set(FX_OK) | {"USD"}) - {"EUR", "GBP"}
    rejected = warehouse.execute(
        "select currency, reason from raw.fx_rates_rejected order by currency"
    ).fetchall()
    assert [c for c, _ in rejected] == ["EUR", "GBP"]
    assert all("rate_per_usd" in why for _, why in rejected)


def test_fx_rates_of_the_simulator_never_overwrite_real_ones(
    source: _Source, warehouse: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve_fx(source, FX_OK, simulated=False)
    assert load_fx(_settings(monkeypatch))["source"] == "frankfurter"
    _serve_fx(source, FX_OK | {"EUR": "0.5"}, simulated=True)
    assert load_fx(_settings(monkeypatch))["source"] == "simulator"

    eur = warehouse.execute(
        "select source, rate_per_usd::text from raw.fx_rates where currency = 'EUR' order by 1"
    ).fetchall()
    assert eur == [("frankfurter", "0.92"), ("simulator", "0.5")]


def test_listings_snapshots_of_both_sources_at_the_same_second_both_land(
    warehouse: psycopg.Connection,
) -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    coins = [_listing(1)]
    assert load_listings_snapshot(warehouse, coins, at, "USD", "simulator") == 1
    assert load_listings_snapshot(warehouse, coins, at, "USD", "coinmarketcap") == 1
    rows = warehouse.execute(
        "select source, coin_id from raw.crypto_listings order by 1"
    ).fetchall()
    assert rows == [("coinmarketcap", 1), ("simulator", 1)]
