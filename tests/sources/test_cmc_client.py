"""CoinMarketCap client against the simulator: shapes v1/v2/v3, ids, tickers, listings."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from moonwatch.errors import SourceResponseError
from moonwatch.messages import build_quote_message
from moonwatch.settings import SIMULATOR_DEFAULT_URL, Settings
from moonwatch.sources.cmc import CoinMarketCapClient

from .support import FIXED_NOW, MARKER_KEY, Canned, cmc_body


def test_quotes_latest_v1_by_symbol_returns_v1_shape(simulator, make_client):
    result = make_client(simulator.url).quotes_latest(symbols=["btc", "ETH"])
    assert [c["id"] for c in result.coins] == [1, 1027]
    btc = result.coins[0]
    assert {"id", "name", "symbol", "slug", "cmc_rank", "circulating_supply", "quote"} <= set(btc)
    assert btc["quote"]["USD"]["price"] > 0
    assert btc["last_updated"] == "2025-05-07T12:34:00.000Z"
    assert result.credit_count == 1 and result.missing == []
    assert result.status["notice"].startswith("Moonwatch offline simulator")


def test_quotes_latest_v1_by_id_asks_by_id(simulator, make_client):
    result = make_client(simulator.url).quotes_latest(ids=[5426, 1027])
    assert [c["id"] for c in result.coins] == [5426, 1027]
    assert simulator.requests["/v1/cryptocurrency/quotes/latest"] == 1


def test_quotes_latest_v2_duplicate_ticker_picks_best_ranked_active(simulator, make_client, caplog):
    caplog.set_level(logging.INFO, logger="moonwatch")
    result = make_client(simulator.url).quotes_latest(symbols=["SOL", "BTC"], version=2)
    # SOL: Solana outranks Solaris Protocol; BTC: the namesake is inactive.
    assert [c["id"] for c in result.coins] == [5426, 1]
    assert "ticker SOL matches 2 coins" in caplog.text and "chose id 5426" in caplog.text


def test_quotes_latest_v2_duplicate_ticker_picks_configured_id(simulator, make_client):
    result = make_client(simulator.url).quotes_latest(
        symbols=["SOL"], version=2, prefer_ids=[90001]
    )
    assert [c["id"] for c in result.coins] == [90001]
    assert result.coins[0]["name"] == "Solaris Protocol"


def test_quotes_latest_v3_maps_to_v1_shape(simulator, make_client):
    client = make_client(simulator.url)
    v1 = client.quotes_latest(ids=[1, 1027, 825], convert="USD", version=1)
    v3 = client.quotes_latest(ids=[1, 1027, 825], convert="USD", version=3)
    assert v3.coins == v1.coins
    assert simulator.requests["/v3/cryptocurrency/quotes/latest"] == 1


def test_quotes_latest_v3_by_symbol_resolves_duplicates(simulator, make_client):
    result = make_client(simulator.url).quotes_latest(symbols=["SOL"], version=3)
    assert [c["id"] for c in result.coins] == [5426]


def test_quotes_latest_ids_and_symbols_make_two_calls(simulator, make_client):
    result = make_client(simulator.url).quotes_latest(ids=[1], symbols=["ETH", "BTC"])
    assert [c["id"] for c in result.coins] == [1, 1027]  # BTC by ticker is not duplicated
    assert simulator.requests["/v1/cryptocurrency/quotes/latest"] == 2
    assert result.credit_count == 2


def test_quotes_latest_missing_symbol_warns_and_returns_rest(simulator, make_client, caplog):
    result = make_client(simulator.url).quotes_latest(symbols=["BTC", "NOPEX"], version=2)
    assert [c["id"] for c in result.coins] == [1]
    assert result.missing == ["NOPEX"]
    assert "NOPEX" in caplog.text and "WARNING" in caplog.text


def test_quotes_latest_none_found_raises_response_error(simulator, make_client):
    with pytest.raises(SourceResponseError, match="none of the requested coins"):
        make_client(simulator.url).quotes_latest(ids=[999_999_999])


def test_quotes_latest_other_currency(simulator, make_client):
    result = make_client(simulator.url).quotes_latest(ids=[1], convert="EUR")
    assert set(result.coins[0]["quote"]) == {"EUR"}


def test_quotes_latest_coins_make_valid_quote_messages(simulator, make_client):
    result = make_client(simulator.url).quotes_latest(symbols=["BTC", "ETH", "SOL", "USDT"])
    for coin in result.coins:
        message = build_quote_message(coin, "USD", "simulator", FIXED_NOW)
        assert message.coin_id == coin["id"] and message.price == coin["quote"]["USD"]["price"]


def test_listings_latest_sorted_and_limited(simulator, make_client):
    client = make_client(simulator.url)
    by_cap = client.listings_latest(limit=10)
    assert [c["cmc_rank"] for c in by_cap.coins] == list(range(1, 11))
    by_volume = client.listings_latest(limit=10, sort="volume_24h")
    volumes = [c["quote"]["USD"]["volume_24h"] for c in by_volume.coins]
    assert volumes == sorted(volumes, reverse=True) and len(volumes) == 10
    assert by_cap.credit_count == 1


def test_client_sends_key_header_only_when_set(replay, make_client):

    server = replay(Canned(200, cmc_body({"1": {"id": 1, "symbol": "BTC", "quote": {}}})))
    make_client(server.url).quotes_latest(ids=[1])
    make_client(server.url, key=None).quotes_latest(ids=[1])
    assert server.headers[0].get("X-CMC_PRO_API_KEY") == MARKER_KEY
    assert "X-CMC_PRO_API_KEY" not in server.headers[1]


def test_client_from_settings_without_key_uses_simulator():
    client = CoinMarketCapClient.from_settings(Settings(CMC_API_KEY=None, CMC_BASE_URL=""))
    assert client.base_url == SIMULATOR_DEFAULT_URL and not client.has_key
    keyed = CoinMarketCapClient.from_settings(Settings(CMC_API_KEY=SecretStr("k"), CMC_BASE_URL=""))
    assert keyed.base_url == "https://pro-api.coinmarketcap.com" and keyed.has_key
