"""Property: whatever CoinMarketCap sends, the page shows the source's number or says why not.

Hypothesis draws CoinMarketCap-shaped ``quotes/latest`` answers (zeros, nulls, tiny and huge
numbers, shared tickers, markup in names, timestamps from the far past to the far future). A
real HTTP server on loopback serves each one; the real producer, broker, loader and dbt carry
it; the dashboard's own query and formatting functions read it back. For every coin, either

- the dashboard's row holds exactly the source's price and market cap; converted to EUR the
  way the page converts (at the rate of the quote's day) it is the source's number times that
  rate; the price as formatted for the page reads back as that number to its shown precision;
  and its source time is not after the fetch, or
- the coin was refused with a reason a person can read: a producer warning naming the coin, or
  a row in ``raw.crypto_quotes_rejected``.

`make test` runs a few examples; `make chaos` runs many more (``test_..._long``).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st

from moonwatch.errors import SourceResponseError
from moonwatch.ingest import consume_and_load
from moonwatch.pipeline import fetch_and_produce_quotes
from moonwatch.settings import load_settings
from moonwatch.sources.credits import InMemoryLedgerStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The contract's allowance for a source clock ahead of ours (messages.py says why).
CLOCK_SKEW = timedelta(minutes=5)
_ids = itertools.count(900_000, 10)  # each example's coins get ids no other example uses


class _Answer:
    body: dict[str, Any] = {}


class _Handler(BaseHTTPRequestHandler):
    answer = _Answer()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        payload = json.dumps(self.answer.body, allow_nan=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def cmc_server() -> Iterator[tuple[str, _Answer]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Handler.answer
    finally:
        server.shutdown()


_finite = {"allow_nan": False, "allow_infinity": False}
positive = st.floats(min_value=1e-12, max_value=1e15, **_finite)
# one_of picks a branch uniformly: repeating the plausible branch keeps most coins valid, so
# most examples reach the page and the rest still probe each refusal.
money = st.one_of(
    positive,
    positive,
    positive,
    st.none(),
    st.just(0),
    st.just(0.0),
    st.floats(max_value=-1e-9, min_value=-1e9, **_finite),
)
price = st.one_of(
    st.sampled_from([1e-9, 1.23e-6, 0.004999, 0.99999, 999_999_999.0, 1e12]),
    st.floats(min_value=1e-10, max_value=1e12, **_finite),
    st.floats(min_value=1e-10, max_value=1e12, **_finite),
    st.none(),
    st.just(0),
    st.floats(max_value=-1e-9, min_value=-1e6, **_finite),
)
# Seconds from the fetch: far past, ordinary past, now, within the skew, beyond it, far future.
offset = st.sampled_from(
    [-61, -61, 0, 0, 30, 240, -86400, -20 * 365 * 86400, 3600, 70 * 365 * 86400]
)
ticker = st.one_of(
    st.sampled_from(["BTC", "ETH", "USDT"]), st.from_regex(r"[A-Z0-9]{1,10}", fullmatch=True)
)
name = st.one_of(
    st.sampled_from(["Bitcoin", "Ether.fi", "Dogwifhat", 'Evil <img src=x onerror="1">']),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30),
)
coin = st.fixed_dictionaries(
    {"symbol": ticker, "name": name, "price": price, "market_cap": money, "volume_24h": money,
     "offset": offset}
)  # fmt: skip


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _answer(drawn: list[dict[str, Any]], ids: list[int], now: datetime) -> dict[str, Any]:
    data = {}
    for coin_id, c in zip(ids, drawn, strict=True):
        updated = _iso(now + timedelta(seconds=c["offset"])) if abs(c["offset"]) < 1e9 else None
        data[str(coin_id)] = {
            "id": coin_id,
            "name": c["name"],
            "symbol": c["symbol"],
            "slug": f"coin-{coin_id}",
            "cmc_rank": coin_id % 5000 + 1,
            "num_market_pairs": 3,
            "circulating_supply": None,
            "total_supply": None,
            "max_supply": None,
            "infinite_supply": None,
            "last_updated": updated,
            "quote": {
                "USD": {
                    "price": c["price"],
                    "volume_24h": c["volume_24h"],
                    "market_cap": c["market_cap"],
                    "percent_change_1h": 0.5,
                    "last_updated": updated,
                }
            },
        }
    return {
        "status": {"timestamp": _iso(now), "error_code": 0, "error_message": None,
                   "elapsed": 1, "credit_count": 1, "notice": None},
        "data": data,
    }  # fmt: skip


def _reads_back(shown: str, value: float) -> bool:
    """The formatted price, read as a number (with its unit), equals ``value`` to the
    precision the page shows (its last shown digit)."""
    match = re.search(r"(-?[\d,]*\.?\d+)(?:e([+-]?\d+))?\s*([KMBT]?)", shown.replace("\u2212", "-"))
    assert match, f"no number in {shown!r}"
    digits = match.group(1).replace(",", "")
    unit = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}[match.group(3)]
    number = float(digits) * 10 ** int(match.group(2) or 0) * unit
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    last_digit = 10 ** (-decimals) * 10 ** int(match.group(2) or 0) * unit
    return math.isclose(number, value, abs_tol=last_digit / 2 * 1.0001)


EUR_PER_USD = 0.8731


def run_property(
    drawn: list[dict[str, Any]],
    cmc: tuple[str, _Answer],
    carry: Callable[[list[int]], list[dict[str, Any]]],
    caplog: pytest.LogCaptureFixture,
    warehouse_url: str,
) -> int:
    """Checks one drawn answer; returns how many of its coins reached the page."""
    from streamlit_app.formatting import format_money

    base = next(_ids)
    ids = [base + i for i in range(len(drawn))]
    now = datetime.now(UTC)
    cmc[1].body = _answer(drawn, ids, now)
    caplog.clear()
    rows = {int(r["coin_id"]): r for r in carry(ids)}
    with psycopg.connect(warehouse_url) as conn:
        rejected = {
            int(key): reason
            for key, reason in conn.execute(
                "select message_key, reason from raw.crypto_quotes_rejected"
                " where message_key = any(%s)",
                ([str(i) for i in ids],),
            )
        }
    warned = caplog.text
    shown_coins: list[int] = []
    for coin_id, c in zip(ids, drawn, strict=True):
        if coin_id in rows:
            shown_coins.append(coin_id)
            row = rows[coin_id]
            assert row["price"] == c["price"], (coin_id, c, row)
            shown_cap = row["market_cap"]
            if c["market_cap"] is None:
                assert shown_cap is None or math.isnan(shown_cap), (c, row)
            else:
                assert shown_cap == c["market_cap"], (c, row)
            eur = row["price_eur"]
            assert math.isclose(eur, c["price"] * EUR_PER_USD, rel_tol=1e-12), (c, row)
            shown = format_money(eur, "EUR")
            assert _reads_back(shown, eur), (shown, eur, c)
            assert c["offset"] <= CLOCK_SKEW.total_seconds(), f"future quote accepted: {c}"
        else:
            reason = rejected.get(coin_id) or (
                f"coin {coin_id} " in warned and warned.split(f"coin {coin_id} ")[1][:200]
            )
            assert reason, f"coin {coin_id} {c} vanished without a reason"
    event(f"{len(shown_coins)} of {len(drawn)} coins reached the page")
    return len(shown_coins)


@pytest.fixture
def carry(
    cmc_server: tuple[str, _Answer],
    warehouse_url: str,
    dashboard_db_url: str,
    kafka: str,
    make_topic: Callable[[], str],
    dbt,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[list[int]], list[dict[str, Any]]]:
    """Factory: the current answer through producer → broker → loader → dbt → dashboard query."""
    from streamlit_app import currency, queries

    # One EUR rate for today, through the real FX mart.
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("delete from raw.fx_rates where currency = 'EUR'")
        conn.execute(
            "insert into raw.fx_rates (as_of_date, currency, rate_per_usd, source)"
            " values (current_date, 'EUR', %s, 'frankfurter')",
            (EUR_PER_USD,),
        )
    dbt("run", "--select", "+fx_rates_daily")
    topic = make_topic()
    monkeypatch.delenv("CMC_API_KEY", raising=False)
    for env, value in {
        "CMC_BASE_URL": cmc_server[0],
        "MOONWATCH_TOPIC": topic,
        "MOONWATCH_WAREHOUSE_URL": warehouse_url,
        "MOONWATCH_DASHBOARD_DB_URL": dashboard_db_url,
        "MOONWATCH_KAFKA_BOOTSTRAP": kafka,
    }.items():
        monkeypatch.setenv(env, value)

    def _carry(ids: list[int]) -> list[dict[str, Any]]:
        settings = load_settings()
        symbols = ",".join(f"id:{i}" for i in ids)
        try:
            fetch_and_produce_quotes(settings, symbols, ledger_store=InMemoryLedgerStore())
        except SourceResponseError:
            return []  # every coin refused by the producer; each has its warning
        consume_and_load(kafka, topic, f"loader-{topic}", warehouse_url)
        dbt("run", "--select", "+latest_quotes")
        queries.clear_caches()
        db = queries.database_key()
        frame = queries.latest_quotes(db, tuple(ids), source="simulator")
        if frame.empty:
            return []
        rates = currency.fx_history(queries.fx_rates(db))
        eur = currency.convert_rows(
            frame, currency.QUOTE_MONEY_COLUMNS, rates, "EUR", at="stamped_at"
        )
        return frame.assign(price_eur=eur["price"]).to_dict("records")

    return _carry


@pytest.fixture
def dashboard_db_url(pg) -> str:
    return pg.dashboard_db_url


_coins = st.lists(coin, min_size=1, max_size=4)
_health = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
# Each example is a real producer run, load and dbt build (seconds): report the failing
# example as drawn rather than spend minutes shrinking it.
_phases = [Phase.explicit, Phase.generate]
# Always run: a sub-cent coin with an unverified (zero) market cap, and a coin sharing its ticker
# whose source clock is an hour ahead (refused).
_KNOWN = [
    {"symbol": "PEPE", "name": "Pepe", "price": 1.23e-6, "market_cap": 0, "volume_24h": 5e8,
     "offset": -61},
    {"symbol": "PEPE", "name": "<b>Pepe</b>", "price": 2.0, "market_cap": 1e9, "volume_24h": None,
     "offset": 3600},
]  # fmt: skip


@settings(
    max_examples=6, deadline=None, suppress_health_check=_health, database=None, phases=_phases
)
@example(drawn=_KNOWN)
@given(drawn=_coins)
def test_every_shown_number_is_the_sources_or_refused_with_a_reason(
    drawn, cmc_server, carry, caplog, warehouse_url
) -> None:
    with caplog.at_level(logging.WARNING):
        shown = run_property(drawn, cmc_server, carry, caplog, warehouse_url)
    if drawn is _KNOWN:  # the sub-cent coin reaches the page, its future twin does not
        assert shown == 1


@pytest.mark.chaos
@settings(
    max_examples=60, deadline=None, suppress_health_check=_health, database=None, phases=_phases
)
@given(drawn=_coins)
def test_every_shown_number_is_the_sources_or_refused_with_a_reason_long(
    drawn, cmc_server, carry, caplog, warehouse_url
) -> None:
    with caplog.at_level(logging.WARNING):
        run_property(drawn, cmc_server, carry, caplog, warehouse_url)
