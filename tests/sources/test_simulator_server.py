"""The simulator over HTTP: CoinMarketCap shapes, credits, errors, faults, Frankfurter."""

from __future__ import annotations

import requests

from moonwatch.sources.simulator import serve_in_thread

from .support import fixed_clock

QUOTES = "/v1/cryptocurrency/quotes/latest"
LISTINGS = "/v1/cryptocurrency/listings/latest"


def get(server, path, **params):
    return requests.get(server.url + path, params=params, timeout=10)


def test_simulator_same_seed_and_clock_serve_identical_json(simulator):
    twin = serve_in_thread(seed=42, clock=fixed_clock)
    other = serve_in_thread(seed=7, clock=fixed_clock)
    try:
        for path, params in [(LISTINGS, {"limit": "50"}), (QUOTES, {"symbol": "BTC,ETH"})]:
            mine = get(simulator, path, **params).content
            assert get(twin, path, **params).content == mine
            assert get(other, path, **params).content != mine
    finally:
        twin.stop()
        other.stop()


def test_simulator_marks_every_response_simulated(simulator):
    for path, params in [("/health", {}), (QUOTES, {"id": "1"}), ("/frankfurter/latest", {})]:
        response = get(simulator, path, **params)
        assert response.headers["X-Moonwatch-Simulated"] == "true"
        assert "simulated data" in response.text


def test_simulator_credit_count_follows_the_rules(simulator):
    listings = get(simulator, LISTINGS, limit="201", convert="USD,EUR").json()
    assert len(listings["data"]) == 201 and listings["status"]["credit_count"] == 3 + 1
    assert set(listings["data"][0]["quote"]) == {"USD", "EUR"}
    quotes = get(simulator, QUOTES, id="1,1027,825").json()
    assert quotes["status"]["credit_count"] == 1


def test_simulator_v2_lists_every_coin_sharing_a_ticker(simulator):
    data = get(simulator, "/v2/cryptocurrency/quotes/latest", symbol="SOL").json()["data"]
    assert [c["id"] for c in data["SOL"]] == [5426, 90001]
    by_id = get(simulator, "/v2/cryptocurrency/quotes/latest", id="5426").json()["data"]
    assert by_id["5426"]["symbol"] == "SOL"


def test_simulator_v3_returns_a_list_with_quote_list(simulator):
    data = get(simulator, "/v3/cryptocurrency/quotes/latest", id="1,1027").json()["data"]
    assert [c["id"] for c in data] == [1, 1027]
    assert data[0]["quote"][0]["symbol"] == "USD" and data[0]["quote"][0]["price"] > 0


def test_simulator_bad_parameters_are_400(simulator):
    cases = [
        (QUOTES, {}),
        (QUOTES, {"id": "1", "symbol": "BTC"}),
        (QUOTES, {"id": "abc"}),
        (QUOTES, {"symbol": "NOPEX"}),
        (QUOTES, {"id": "1", "convert": "XYZ"}),
        (LISTINGS, {"limit": "0"}),
        (LISTINGS, {"limit": "5001"}),
        (LISTINGS, {"sort": "bogus"}),
    ]
    for path, params in cases:
        response = get(simulator, path, **params)
        assert response.status_code == 400, params
        assert response.json()["status"]["error_code"] == 400


def test_simulator_skip_invalid_drops_unknown_symbols(simulator):
    data = get(simulator, QUOTES, symbol="BTC,NOPEX", skip_invalid="true").json()["data"]
    assert list(data) == ["BTC"]


def test_simulator_listings_sort_and_pages(simulator):
    asc = get(simulator, LISTINGS, sort="price", sort_dir="asc", limit="20").json()["data"]
    prices = [c["quote"]["USD"]["price"] for c in asc]
    assert prices == sorted(prices)
    page2 = get(simulator, LISTINGS, start="11", limit="10").json()["data"]
    assert [c["cmc_rank"] for c in page2] == list(range(11, 21))


def test_simulator_requires_key_when_configured(simulator):
    requests.post(simulator.url + "/_sim/config", json={"require_key": True}, timeout=5)
    missing = get(simulator, QUOTES, id="1")
    assert missing.status_code == 401 and missing.json()["status"]["error_code"] == 1002
    keyed = requests.get(
        simulator.url + QUOTES, params={"id": "1"}, headers={"X-CMC_PRO_API_KEY": "any"}, timeout=5
    )
    assert keyed.status_code == 200


def test_simulator_faults_are_injected_then_cleared(simulator):
    fault = {"status": 429, "error_code": 1008, "count": 2, "retry_after": 5}
    assert requests.post(simulator.url + "/_sim/faults", json=fault, timeout=5).status_code == 201
    first = get(simulator, QUOTES, id="1")
    assert first.status_code == 429 and first.headers["Retry-After"] == "5"
    assert first.json()["status"]["error_code"] == 1008
    assert get(simulator, QUOTES, id="1").status_code == 429
    assert get(simulator, QUOTES, id="1").status_code == 200
    requests.post(simulator.url + "/_sim/faults", json={"status": 500, "count": None}, timeout=5)
    assert get(simulator, QUOTES, id="1").status_code == 500
    requests.delete(simulator.url + "/_sim/faults", timeout=5)
    assert get(simulator, QUOTES, id="1").status_code == 200
    seen = requests.get(simulator.url + "/_sim/requests", timeout=5).json()["requests"]
    assert seen[QUOTES] == 5


def test_simulator_frankfurter_shape(simulator):
    body = get(simulator, "/frankfurter/latest", base="USD", symbols="EUR,SEK,JPY").json()
    assert body["base"] == "USD" and body["amount"] == 1.0 and body["date"] == "2025-05-07"
    assert set(body["rates"]) == {"EUR", "SEK", "JPY"}
    assert get(simulator, "/frankfurter/latest", symbols="XXX").status_code == 404
