"""History at the source: the simulator's quotes/historical and key/info over HTTP, and the
client's quotes_historical (shape, credits, and a plan without history)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from moonwatch.errors import SourceRejectedError
from moonwatch.sources.simulator import SimulatorServer, serve_in_thread
from tests.simulator import SIM_TOKEN, sim_control

from .support import FIXED_NOW, MARKER_KEY, fixed_clock

HISTORY = "/v2/cryptocurrency/quotes/historical"
HOUR_AGO = FIXED_NOW.replace(second=0, microsecond=0) - timedelta(hours=1)


def get(server: SimulatorServer, path: str, **params: str) -> requests.Response:
    return requests.get(server.url + path, params=params, timeout=30)


@pytest.fixture
def free_plan() -> Iterator[SimulatorServer]:
    """A simulator metered like CoinMarketCap's free plan, with fault control."""
    server = serve_in_thread(clock=fixed_clock, control_token=SIM_TOKEN, monthly_credits=10_000)
    yield server
    server.stop()


def test_simulator_history_is_the_live_market_at_each_minute(simulator):
    body = get(
        simulator,
        HISTORY,
        id="1,1027",
        interval="1m",
        time_start=HOUR_AGO.isoformat(),
        time_end=FIXED_NOW.isoformat(),
    ).json()
    assert body["status"]["error_code"] == 0
    btc = body["data"]["1"]
    assert btc["symbol"] == "BTC" and len(btc["quotes"]) == 61  # both ends inclusive
    stamps = [q["timestamp"] for q in btc["quotes"]]
    assert stamps[0] == HOUR_AGO.strftime("%Y-%m-%dT%H:%M:00.000Z") and stamps == sorted(stamps)
    # 2 coins x 61 points = 122 data points: 2 credits (one per 100, rounded up).
    assert body["status"]["credit_count"] == 2
    # The newest point is the live quote of that minute: history and live agree exactly.
    live = get(simulator, "/v1/cryptocurrency/quotes/latest", id="1").json()["data"]["1"]
    newest = btc["quotes"][-1]["quote"]["USD"]
    assert newest["timestamp"] == live["quote"]["USD"]["last_updated"]
    assert newest["price"] == live["quote"]["USD"]["price"]
    assert newest["market_cap"] == live["quote"]["USD"]["market_cap"]


def test_simulator_history_never_reaches_past_now_and_checks_its_parameters(simulator):
    later = FIXED_NOW + timedelta(days=2)
    body = get(simulator, HISTORY, id="1", interval="5m", time_start=HOUR_AGO.isoformat(),
               time_end=later.isoformat()).json()  # fmt: skip
    stamps = [q["timestamp"] for q in body["data"]["1"]["quotes"]]
    assert len(stamps) == 12 and stamps[-1] == "2025-05-07T12:30:00.000Z"
    bad = get(simulator, HISTORY, id="1", interval="7m")
    assert bad.status_code == 400 and "interval" in bad.json()["status"]["error_message"]
    both = get(simulator, HISTORY, id="1", symbol="BTC")
    assert both.status_code == 400


def test_simulator_key_info_counts_the_credits_its_answers_cost(free_plan):
    get(free_plan, "/v1/cryptocurrency/listings/latest", limit="200")  # 2 credits
    get(free_plan, HISTORY, id="1,1027,5426", interval="1m", time_start=HOUR_AGO.isoformat(),
        time_end=FIXED_NOW.isoformat())  # 183 points: 2 credits  # fmt: skip
    info = get(free_plan, "/v1/key/info").json()["data"]
    assert info["plan"]["credit_limit_monthly"] == 10_000
    assert info["usage"]["current_month"] == {"credits_used": 4, "credits_left": 9_996}
    assert info["plan"]["credit_limit_monthly_reset_timestamp"] == "2025-06-01T00:00:00.000Z"


def test_client_quotes_historical_returns_one_v1_coin_per_point(simulator, make_client):
    client = make_client(simulator.url)
    result = client.quotes_historical([1, 1027], HOUR_AGO, FIXED_NOW, "5m")
    assert result.credit_count == 1 and result.missing == []
    assert len(result.points) == 2 * 12  # 11:35 to 12:30
    first = result.points[0]
    assert first["id"] == 1 and first["last_updated"] == "2025-05-07T11:35:00.000Z"
    assert first["quote"]["USD"]["last_updated"] == first["last_updated"]
    assert first["quote"]["USD"]["price"] > 0 and first["circulating_supply"] > 0
    times = [(p["last_updated"], p["id"]) for p in result.points]
    assert times == sorted(times)


def test_client_names_the_plan_when_history_is_not_included(free_plan, make_client):
    """Error 1006 (the free Basic plan has no history) becomes one clear sentence naming the
    plan, read from /v1/key/info, and what to do; it is not retried."""
    sim_control(free_plan.url, "POST", "/_sim/faults",
                {"status": 403, "error_code": 1006, "path_prefix": HISTORY})  # fmt: skip
    client = make_client(free_plan.url)
    with pytest.raises(SourceRejectedError) as refused:
        client.quotes_historical([1], HOUR_AGO, FIXED_NOW, "5m")
    message = str(refused.value)
    assert "Basic (free) (10,000 credits a month)" in message
    assert "error 1006" in message and "Hobbyist or higher" in message
    assert "CMC_API_KEY" in message and MARKER_KEY not in message
    assert free_plan.requests[HISTORY] == 1  # refused once, never retried


def test_history_end_before_start_is_refused_before_any_call(simulator, make_client):
    client = make_client(simulator.url)
    with pytest.raises(ValueError, match="time_end"):
        client.quotes_historical([1], FIXED_NOW, HOUR_AGO)
    assert simulator.requests[HISTORY] == 0
    assert datetime(2025, 5, 7, tzinfo=UTC) < FIXED_NOW
