"""CoinMarketCap client error handling against real loopback servers (no mocked requests)."""

from __future__ import annotations

import logging
import socket

import pytest

from moonwatch.errors import SourceRejectedError, SourceResponseError, SourceUnavailableError
from tests.simulator import sim_control

from .support import MARKER_KEY, Canned, cmc_body

BTC = {"id": 1, "symbol": "BTC", "name": "Bitcoin", "slug": "bitcoin", "quote": {"USD": {}}}
OK = Canned(200, cmc_body({"1": BTC}))

REJECTED = [
    (401, 1001, "invalid"),
    (401, 1002, "missing"),
    (402, 1003, "payment"),
    (402, 1004, "expired"),
    (403, 1005, "required"),
    (403, 1006, "does not include"),
    (403, 1007, "disabled"),
    (429, 1009, "DAILY"),
    (429, 1010, "MONTHLY"),
    (429, 1011, "IP rate limit"),
    (400, 400, "parameter"),
]


@pytest.mark.parametrize(("http", "code", "cause"), REJECTED)
def test_client_rejected_codes_are_not_retried(replay, make_client, http, code, cause):
    server = replay(Canned(http, cmc_body(error_code=code, message="refused")), OK)
    with pytest.raises(SourceRejectedError) as caught:
        make_client(server.url).quotes_latest(ids=[1])
    assert server.count == 1
    assert f"error {code}" in str(caught.value) and cause in str(caught.value)


def test_client_http_200_with_error_code_is_an_error(replay, make_client):
    server = replay(Canned(200, cmc_body(error_code=1002, message="API key missing.")))
    with pytest.raises(SourceRejectedError, match="key is missing"):
        make_client(server.url).quotes_latest(ids=[1])
    assert server.count == 1


def test_client_1008_waits_for_next_minute_then_succeeds(replay, make_client, sleeps):
    server = replay(Canned(429, cmc_body(error_code=1008, message="rate limit")), OK)
    result = make_client(server.url).quotes_latest(ids=[1])
    assert result.coins[0]["id"] == 1 and server.count == 2
    # FIXED_NOW is hh:mm:45.25: the window resets in 14.75 s, rounded up, plus a spare second.
    assert sleeps.waits == [16.0]


def test_client_1008_honours_retry_after(replay, make_client, sleeps):
    limited = Canned(429, cmc_body(error_code=1008), headers={"Retry-After": "7"})
    server = replay(limited, OK)
    make_client(server.url).quotes_latest(ids=[1])
    assert sleeps.waits == [7.0] and server.count == 2


def test_client_1008_gives_up_after_max_attempts(replay, make_client):
    server = replay(Canned(429, cmc_body(error_code=1008)))
    with pytest.raises(SourceUnavailableError, match="per-minute rate limit"):
        make_client(server.url, max_attempts=4).quotes_latest(ids=[1])
    assert server.count == 4


def test_client_5xx_then_success(simulator, make_client, sleeps):
    sim_control(simulator.url, "POST", "/_sim/faults", {"status": 500, "count": 2})
    result = make_client(simulator.url).quotes_latest(ids=[1])
    assert result.coins[0]["id"] == 1
    assert simulator.requests["/v1/cryptocurrency/quotes/latest"] == 3
    assert len(sleeps.waits) == 2 and sleeps.waits[0] < sleeps.waits[1]  # exponential backoff


def test_client_simulator_1008_fault_then_success(simulator, make_client, sleeps):
    fault = {"status": 429, "error_code": 1008, "count": 1, "retry_after": 3}
    sim_control(simulator.url, "POST", "/_sim/faults", fault).raise_for_status()
    make_client(simulator.url).quotes_latest(ids=[1])
    assert simulator.requests["/v1/cryptocurrency/quotes/latest"] == 2 and sleeps.waits == [3.0]


def test_client_5xx_exhausts_attempts(replay, make_client):
    server = replay(Canned(503, "<html>Service Unavailable</html>"))
    with pytest.raises(SourceUnavailableError, match="HTTP 503"):
        make_client(server.url).quotes_latest(ids=[1])
    assert server.count == 3


def test_client_timeout_is_retried_then_raised(replay, make_client):
    server = replay(Canned(200, cmc_body({"1": BTC}), delay=1.0))
    with pytest.raises(SourceUnavailableError, match="timed out"):
        make_client(server.url, timeout=0.2, max_attempts=2).quotes_latest(ids=[1])
    assert server.count == 2


def test_client_connection_refused_is_unavailable(make_client):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the call: nothing listens there
    with pytest.raises(SourceUnavailableError, match="could not be reached"):
        make_client(f"http://127.0.0.1:{port}", max_attempts=2).quotes_latest(ids=[1])


def test_client_non_json_body_is_a_response_error(replay, make_client):
    server = replay(Canned(200, "<html>captive portal</html>", {"Content-Type": "text/html"}))
    with pytest.raises(SourceResponseError, match="not JSON"):
        make_client(server.url).quotes_latest(ids=[1])
    assert server.count == 1


def test_client_missing_status_is_a_response_error(replay, make_client):
    server = replay(Canned(200, {"data": {"1": BTC}}))
    with pytest.raises(SourceResponseError, match="without a 'status'"):
        make_client(server.url).quotes_latest(ids=[1])


def test_client_missing_data_is_a_response_error(replay, make_client):
    server = replay(Canned(200, {"status": cmc_body()["status"]}))
    with pytest.raises(SourceResponseError, match="without 'data'"):
        make_client(server.url).quotes_latest(ids=[1])


def test_client_keeps_null_numeric_fields(replay, make_client):
    coin = {
        **BTC,
        "cmc_rank": None,
        "circulating_supply": None,
        "max_supply": None,
        "quote": {"USD": {"price": 1.5, "volume_24h": None, "percent_change_7d": None}},
    }
    server = replay(Canned(200, cmc_body({"BTC": coin})))
    result = make_client(server.url).quotes_latest(symbols=["BTC"])
    got = result.coins[0]
    assert got["circulating_supply"] is None and got["cmc_rank"] is None
    assert got["quote"]["USD"]["volume_24h"] is None and got["quote"]["USD"]["price"] == 1.5


def test_client_missing_some_ids_returns_the_rest(replay, make_client, caplog):
    server = replay(Canned(200, cmc_body({"1": BTC})))
    result = make_client(server.url).quotes_latest(ids=[1, 1027])
    assert [c["id"] for c in result.coins] == [1] and result.missing == ["id:1027"]
    assert "id:1027" in caplog.text


def _chain(error: BaseException) -> str:
    parts = []
    while error is not None:
        parts += [str(error), repr(error)]
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return " ".join(parts)


def test_client_key_never_in_logs_or_exceptions(replay, make_client, caplog):
    caplog.set_level(logging.DEBUG)  # urllib3 and requests included
    errors: list[BaseException] = []
    # A server that echoes the key back in its error message.
    echo = replay(Canned(401, cmc_body(error_code=1001, message=f"bad key {MARKER_KEY}")))
    # A base URL holding the key: requests puts URLs in its connection-error messages.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    slow = replay(Canned(200, cmc_body({"1": BTC}), delay=1.0))
    html = replay(Canned(200, f"<html>{MARKER_KEY}</html>"))
    for url, kwargs in [
        (echo.url, {}),
        (f"http://127.0.0.1:{closed}/{MARKER_KEY}", {}),
        (slow.url + "/" + MARKER_KEY, {"timeout": 0.2}),
        (html.url, {}),
    ]:
        client = make_client(url, max_attempts=2, **kwargs)
        assert MARKER_KEY not in repr(client)
        with pytest.raises(Exception) as caught:
            client.quotes_latest(ids=[1])
        errors.append(caught.value)
    assert len(errors) == 4
    for error in errors:
        assert MARKER_KEY not in _chain(error), _chain(error)
    assert MARKER_KEY not in caplog.text
    assert echo.headers[0]["X-CMC_PRO_API_KEY"] == MARKER_KEY  # it was sent, just never shown
