"""What one upstream answer may cost the clients: no redirects (the key stays home), the key only
over https or loopback, bounded Retry-After waits, a body cap, a total deadline, JSON only.

Real HTTP servers on loopback; waits are recorded by a fake sleep, never timed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime

import pytest
from pydantic import SecretStr, ValidationError

from moonwatch.errors import (
    ConfigurationError,
    SourceRejectedError,
    SourceResponseError,
    SourceUnavailableError,
)
from moonwatch.settings import Settings, load_settings
from moonwatch.sources._http import MAX_RETRY_AFTER_SECONDS, HttpLimits
from moonwatch.sources.cmc import CoinMarketCapClient
from moonwatch.sources.fx import fetch_usd_rates

from .support import FIXED_NOW, MARKER_KEY, Canned, Sleeps, StreamServer, cmc_body

QUOTES = "/v1/cryptocurrency/quotes/latest"
BTC = {"id": 1, "symbol": "BTC", "name": "Bitcoin", "slug": "bitcoin", "quote": {"USD": {}}}
OK = Canned(200, cmc_body({"1": BTC}))
FX_OK = Canned(200, {"amount": 1.0, "base": "USD", "date": "2025-05-07", "rates": {"EUR": 0.9}})
CAP = MAX_RETRY_AFTER_SECONDS
# The default wait for a 1008 at FIXED_NOW (hh:mm:45.25): the next minute plus a spare second.
NEXT_MINUTE = 16.0


@pytest.fixture
def streams() -> Iterator[list[StreamServer]]:
    servers: list[StreamServer] = []
    yield servers
    for server in servers:
        server.close()


# -- redirects --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_client_never_follows_a_redirect_with_the_key(replay, make_client, status):
    elsewhere = replay(OK)  # another host that records every header it is sent
    target = f"{elsewhere.url}{QUOTES}?id=1&echo={MARKER_KEY}"
    api = replay(Canned(status, "", {"Location": target}))
    with pytest.raises(SourceRejectedError) as caught:
        make_client(api.url).quotes_latest(ids=[1])
    assert elsewhere.count == 0 and elsewhere.headers == []  # the key never left the API host
    assert api.count == 1  # a redirect is not retried
    message = str(caught.value)
    assert f"redirect to '{elsewhere.url}{QUOTES}" in message and "CMC_BASE_URL" in message
    assert MARKER_KEY not in message


def test_fx_never_follows_a_redirect(replay):
    elsewhere = replay(FX_OK)
    api = replay(Canned(301, "", {"Location": f"{elsewhere.url}/v1/latest"}))
    with pytest.raises(SourceRejectedError) as caught:
        fetch_usd_rates(api.url, ["EUR"], sleep=Sleeps())
    assert elsewhere.count == 0
    assert f"{elsewhere.url}/v1/latest" in str(caught.value)
    assert "MOONWATCH_FX_BASE_URL" in str(caught.value)


# -- the key only over https (or to loopback) ---------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://pro-api.coinmarketcap.com",
        "HTTP://example.com:8080/v1",
        "http://10.0.0.5:18600",
        "http://user:hunter2@cmc-proxy.internal",
        "ftp://example.com",
        "pro-api.coinmarketcap.com",
    ],
)
def test_a_key_is_refused_with_a_non_https_base_url(url, monkeypatch):
    with pytest.raises(ConfigurationError, match="CMC_BASE_URL") as caught:
        CoinMarketCapClient(url, SecretStr(MARKER_KEY))
    assert "hunter2" not in str(caught.value) and MARKER_KEY not in str(caught.value)
    with pytest.raises(ValidationError, match=r"CMC_BASE_URL.*not an https URL"):
        Settings(CMC_API_KEY=SecretStr(MARKER_KEY), CMC_BASE_URL=url)
    monkeypatch.setenv("CMC_API_KEY", MARKER_KEY)
    monkeypatch.setenv("CMC_BASE_URL", url)
    with pytest.raises(ConfigurationError, match="CMC_BASE_URL") as loaded:
        load_settings()
    assert MARKER_KEY not in str(loaded.value) and "hunter2" not in str(loaded.value)


@pytest.mark.parametrize(
    "url", ["https://pro-api.coinmarketcap.com", "http://127.0.0.1:18600", "http://localhost:1"]
)
def test_a_key_is_accepted_over_https_or_loopback(url):
    Settings(CMC_API_KEY=SecretStr(MARKER_KEY), CMC_BASE_URL=url)
    CoinMarketCapClient(url, SecretStr(MARKER_KEY)).close()
    CoinMarketCapClient("http://[::1]:8", SecretStr(MARKER_KEY)).close()
    # No key, nothing to protect: the compose stack's simulator is plain http by name.
    CoinMarketCapClient("http://simulator:18600", None).close()
    Settings(CMC_API_KEY=None, CMC_BASE_URL="http://simulator:18600")


# -- Retry-After --------------------------------------------------------------------------------


def _in(seconds: float) -> str:
    return format_datetime(FIXED_NOW + timedelta(seconds=seconds), usegmt=True)


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("86400", CAP),
        ("1000000000", CAP),
        ("9" * 400, CAP),  # float() makes it inf
        (_in(30), 29.75),  # HTTP-dates have whole seconds; FIXED_NOW is at .25
        (_in(7 * 86400), CAP),
        (format_datetime(FIXED_NOW - timedelta(hours=1), usegmt=True), 0.0),
    ],
)
def test_client_retry_after_is_bounded(replay, make_client, sleeps, header, wait):
    server = replay(Canned(429, cmc_body(error_code=1008), {"Retry-After": header}), OK)
    make_client(server.url).quotes_latest(ids=[1])
    assert sleeps.waits == [wait] and server.count == 2


def test_client_unreadable_retry_after_falls_back_to_the_next_minute(replay, make_client, sleeps):
    garbage = ["1e400", "1e9", "Infinity", "NaN", "-5", "soon", "Wed, 99 Foo 2025 25:61:00 GMT"]
    for header in garbage:
        server = replay(Canned(429, cmc_body(error_code=1008), {"Retry-After": header}), OK)
        make_client(server.url).quotes_latest(ids=[1])
    assert sleeps.waits == [NEXT_MINUTE] * len(garbage)


def test_fx_retry_after_is_bounded_and_garbage_means_backoff(replay):
    for header, wait in [("86400", CAP), ("1e400", 1.0), ("Infinity", 1.0), (_in(10**9), CAP)]:
        sleeps = Sleeps()
        server = replay(Canned(503, "down", {"Retry-After": header}), FX_OK)
        fetch_usd_rates(server.url, ["EUR"], sleep=sleeps)
        assert sleeps.waits == [wait], header  # 1.0: the first exponential backoff step


# -- body size ----------------------------------------------------------------------------------


def _megabytes(total: int, first: bytes = b"") -> Iterator[bytes]:
    yield first
    for _ in range(total):
        yield b"x" * 2**20


def test_client_stops_reading_a_body_over_the_cap(streams, make_client):
    huge = StreamServer(
        lambda: _megabytes(256, b'{"status": {}, "data": "'), {"Content-Type": "application/json"}
    )
    streams.append(huge)
    with pytest.raises(SourceResponseError, match="larger than the 33,554,432-byte limit"):
        make_client(huge.url, max_attempts=1).quotes_latest(ids=[1])
    assert huge.finished.wait(30)
    # The cap plus what the kernel's socket buffers took; nowhere near the 256 MB on offer.
    assert huge.sent < 96 * 2**20, huge.sent


def test_client_refuses_a_declared_oversize_body_before_reading_it(streams, make_client):
    declared = StreamServer(
        lambda: _megabytes(64),
        {"Content-Type": "application/json", "Content-Length": str(64 * 2**20)},
    )
    streams.append(declared)
    client = make_client(declared.url, max_attempts=1, max_body_bytes=2**20)
    with pytest.raises(SourceResponseError, match=r"declared 67108864 bytes"):
        client.quotes_latest(ids=[1])


def test_client_reads_only_a_preview_of_a_huge_html_page(streams, make_client):
    page = StreamServer(lambda: _megabytes(256, b"<html>"), {"Content-Type": "text/html"})
    streams.append(page)
    with pytest.raises(SourceResponseError, match=r"not JSON.*text/html"):
        make_client(page.url, max_attempts=1).quotes_latest(ids=[1])
    assert page.finished.wait(30)
    assert page.sent < 96 * 2**20, page.sent


def test_fx_stops_reading_a_body_over_the_cap(streams):
    huge = StreamServer(
        lambda: _megabytes(64, b'{"rates": "'), {"Content-Type": "application/json"}
    )
    streams.append(huge)
    limits = HttpLimits(timeout=5.0, deadline=60.0, max_bytes=2**20)
    with pytest.raises(SourceResponseError, match="larger than the 1,048,576-byte limit"):
        fetch_usd_rates(huge.url, ["EUR"], max_attempts=1, limits=limits)


# -- total deadline -----------------------------------------------------------------------------


def _trickle(body: bytes, pieces: int = 60) -> Iterator[bytes]:
    step = -(-len(body) // pieces)
    return (body[i : i + step] for i in range(0, len(body), step))


def test_client_cuts_off_a_trickling_server_at_the_deadline(streams, make_client):
    # 60 pieces 0.1 s apart: every read is well inside the 1 s timeout, but the whole takes
    # ~6 s, twice the 3 s deadline (3 x timeout). Before the deadline it simply succeeded.
    body = json.dumps(cmc_body({"1": BTC})).encode()
    slow = StreamServer(lambda: _trickle(body), {"Content-Type": "application/json"}, pause=0.1)
    streams.append(slow)
    with pytest.raises(SourceUnavailableError, match=r"did not finish within its 3 s deadline"):
        make_client(slow.url, timeout=1.0, max_attempts=1).quotes_latest(ids=[1])


def test_fx_cuts_off_a_trickling_server_at_the_deadline(streams):
    body = json.dumps(FX_OK.body).encode()  # a byte every 0.1 s: ~8 s for the whole
    slow = StreamServer(
        lambda: _trickle(body, len(body)), {"Content-Type": "application/json"}, pause=0.1
    )
    streams.append(slow)
    with pytest.raises(SourceUnavailableError, match="deadline"):
        fetch_usd_rates(slow.url, ["EUR"], timeout=1.0, max_attempts=1)


# -- content type -------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/html", "text/plain", "application/octet-stream"])
def test_client_parses_only_a_json_content_type(replay, make_client, content_type):
    # A well-formed CoinMarketCap body, but not labelled JSON: a proxy page or a wrong URL.
    server = replay(Canned(200, json.dumps(cmc_body({"1": BTC})), {"Content-Type": content_type}))
    with pytest.raises(SourceResponseError, match=f"not JSON.*{content_type}.*application/json"):
        make_client(server.url).quotes_latest(ids=[1])


def test_fx_parses_only_a_json_content_type(replay):
    server = replay(Canned(200, json.dumps(FX_OK.body), {"Content-Type": "text/plain"}))
    with pytest.raises(SourceResponseError, match=r"not JSON.*text/plain"):
        fetch_usd_rates(server.url, ["EUR"])
