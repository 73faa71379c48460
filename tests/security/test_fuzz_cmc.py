"""Fuzzing the producer's way in: CoinMarketCap replies → the client → build_quote_message.

Every reply, however broken, ends as either valid ``QuoteMessage``s (coins that cannot make one
are skipped with ``InvalidMessage`` and a reason) or a ``SourceError`` saying what went wrong;
never another exception, and the API key never shows in an error or a log line, not even when
a hostile server echoes it back.

Most examples go through the real client (``requests`` session, ``_check``, retries, shape
normalisation) with a transport adapter that answers from memory; a few hundred go over real
loopback HTTP.
"""

from __future__ import annotations

import io
import logging
import os
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import urllib3
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from moonwatch.errors import SourceError
from moonwatch.messages import InvalidMessage, QuoteMessage, build_quote_message
from moonwatch.sources.cmc import CoinMarketCapClient
from tests.security.strategies import IDS, TICKERS, Poison, seeds

FUZZ = settings(
    max_examples=int(os.environ.get("SECURITY_FUZZ_EXAMPLES", "10000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
KEY = f"fuzzkey{uuid.uuid4().hex}"
NOW = datetime(2025, 5, 7, 12, 34, 45, tzinfo=UTC)
FETCHED = datetime(2025, 5, 7, 12, 34, 50, tzinfo=UTC)


def leaks(text: str) -> bool:
    """True when ``text`` holds the key or any 10-character piece of it (a truncated key is
    still a leak)."""
    return any(KEY[i : i + 10] in text for i in range(len(KEY) - 9))


WATCHED_LOGGERS = ("moonwatch", "urllib3", "requests", "charset_normalizer", "tenacity")


class _LeakWatch(logging.Handler):
    """Collects every log line (any logger) that carries a piece of the key."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaked: list[str] = []
        self.lines = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.lines += 1
        text = record.getMessage() + (self.format(record) if record.exc_info else "")
        if leaks(text):
            self.leaked.append(text[:300])


@pytest.fixture
def leak_watch() -> Iterator[_LeakWatch]:
    """Every record of the client's loggers and the HTTP stack's, at DEBUG, goes to the watch
    only (not propagated to pytest's capture, which would hold tens of thousands of records)."""
    handler = _LeakWatch()
    saved = []
    for name in WATCHED_LOGGERS:
        log = logging.getLogger(name)
        saved.append((log, log.level, log.propagate))
        log.addHandler(handler)
        log.setLevel(logging.DEBUG)
        log.propagate = False
    try:
        yield handler
    finally:
        for log, level, propagate in saved:
            log.removeHandler(handler)
            log.setLevel(level)
            log.propagate = propagate
    assert handler.leaked == [], handler.leaked[:3]
    assert handler.lines > 0  # the watch saw the client's logging


class _Canned(BaseAdapter):
    """A requests transport that answers every request with the current canned reply."""

    def __init__(self) -> None:
        super().__init__()
        self.reply: tuple[int, bytes, str | None] = (200, b"{}", None)
        self.calls = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        assert request.headers["X-CMC_PRO_API_KEY"] == KEY
        self.calls += 1
        status, body, content_type = self.reply
        response = requests.Response()
        response.status_code = status
        headers = {"Content-Type": content_type} if content_type else {}
        # The client streams the body (to cap it), so it reads ``raw``, as from a socket.
        response.raw = urllib3.HTTPResponse(
            body=io.BytesIO(body), headers=headers, status=status, preload_content=False
        )
        response.headers = CaseInsensitiveDict(headers)
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        response.reason = "Canned"
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def _client(base_url: str) -> CoinMarketCapClient:
    return CoinMarketCapClient(
        base_url,
        SecretStr(KEY),
        timeout=5.0,
        max_attempts=2,
        sleep=lambda seconds: None,
        clock=lambda: NOW,
    )


def _in_memory_client() -> tuple[CoinMarketCapClient, _Canned]:
    client = _client("https://cmc.fuzz")  # a key goes over https only
    adapter = _Canned()
    client._session.mount("https://cmc.fuzz", adapter)
    client._session.trust_env = False  # no proxy/netrc lookups per request: 3x faster
    return client, adapter


def _labelled(reply: tuple[int, bytes, str | None], rng: random.Random) -> tuple:
    """Most replies say they are JSON: the client parses no other content type, so a reply
    keeps its poisoned (missing or wrong) label only sometimes, and the shapes still get fuzzed."""
    status, body, content_type = reply
    return status, body, content_type if rng.random() < 0.25 else "application/json"


class Outcomes:
    def __init__(self) -> None:
        self.counts = {"messages": 0, "skipped": 0, "source_errors": 0, "results": 0}

    def __getitem__(self, name: str) -> int:
        return self.counts[name]

    def assert_all_reached(self, *names: str) -> None:
        total = sum(self.counts.values())
        for name in names:
            assert self.counts[name] > total / 20, self.counts

    def call(self, fetch: Callable[[], Any], requested_ids: set[int] | None = None) -> None:
        """Run one client call and hold its outcome to the contract."""
        try:
            result = fetch()
        except SourceError as e:
            text = str(e)
            assert text.strip() and len(text) < 2000, text
            assert not leaks(text + repr(e)), text
            cause = e.__cause__ or e.__context__
            assert cause is None or not leaks(f"{cause} {cause!r}")
            self.counts["source_errors"] += 1
            return
        self.counts["results"] += 1
        assert type(result.credit_count) is int and 0 <= result.credit_count < 2**31, (
            result.credit_count
        )
        assert isinstance(result.coins, list)
        for coin in result.coins:
            assert isinstance(coin, dict) and type(coin["id"]) in (int, bool)
            if requested_ids is not None:
                assert coin["id"] in requested_ids
            self.build(coin)

    def build(self, coin: dict[str, Any]) -> None:
        try:
            message = build_quote_message(coin, "USD", "coinmarketcap", FETCHED)
        except InvalidMessage as e:
            assert e.reason.strip()
            self.counts["skipped"] += 1
            return
        assert isinstance(message, QuoteMessage)
        assert message.coin_id == coin["id"] and message.quote_currency == "USD"
        message.model_dump_json().encode("utf-8")  # storable: valid UTF-8, no NUL (checked)
        self.counts["messages"] += 1


def test_quotes_latest_any_reply_any_shape_gives_messages_or_a_source_error(
    leak_watch: _LeakWatch,
) -> None:
    client, adapter = _in_memory_client()
    outcomes = Outcomes()
    asks = (([1, 1027], []), ([], ["BTC", "sol"]), ([5426], ["ETH"]), (list(IDS), list(TICKERS)))

    @FUZZ
    @given(seeds)
    def run(rng: random.Random) -> None:
        poison = Poison(rng, key=KEY)
        version = rng.choice((1, 2, 3))
        ids, tickers = rng.choice(asks)
        adapter.reply = _labelled(poison.reply(poison.quotes_data(version)), rng)
        outcomes.call(
            lambda: client.quotes_latest(ids=ids, symbols=tickers, convert="USD", version=version),
            None if tickers else set(ids),
        )

    with client:
        run()
    assert adapter.calls >= FUZZ.max_examples
    # Not vacuous: every outcome is reached often.
    outcomes.assert_all_reached("messages", "skipped", "source_errors")


def test_listings_latest_any_reply_gives_coins_or_a_source_error(leak_watch: _LeakWatch) -> None:
    client, adapter = _in_memory_client()
    outcomes = Outcomes()

    @FUZZ
    @given(seeds)
    def run(rng: random.Random) -> None:
        poison = Poison(rng, key=KEY)
        adapter.reply = _labelled(poison.reply(poison.listings_data()), rng)
        outcomes.call(lambda: client.listings_latest(limit=200, convert="USD"))

    with client:
        run()
    outcomes.assert_all_reached("messages", "skipped", "source_errors")


class _LoopbackCMC:
    """A real HTTP server on 127.0.0.1 that answers every GET with the current reply."""

    def __init__(self) -> None:
        self.reply: tuple[int, bytes, str | None] = (200, b"{}", None)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, body, content_type = outer.reply
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_real_client_over_loopback_http(leak_watch: _LeakWatch) -> None:
    server = _LoopbackCMC()
    client = _client(server.url)
    outcomes = Outcomes()

    @settings(FUZZ, max_examples=200)
    @given(seeds)
    def run(rng: random.Random) -> None:
        poison = Poison(rng, key=KEY)
        version = rng.choice((1, 2, 3))
        if rng.random() < 0.3:
            server.reply = _labelled(poison.reply(poison.listings_data()), rng)
            outcomes.call(lambda: client.listings_latest(limit=10))
        else:
            server.reply = _labelled(poison.reply(poison.quotes_data(version)), rng)
            outcomes.call(
                lambda: client.quotes_latest(ids=[1, 1027], symbols=["SOL"], version=version)
            )

    try:
        with client:
            run()
    finally:
        server.close()
    assert outcomes["results"] > 10 and outcomes["source_errors"] > 10, outcomes.counts
