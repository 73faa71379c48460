"""The simulator's market model: determinism and internal consistency."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from moonwatch.sources.simulator.market import CHANGE_WINDOWS, Market

from .support import FIXED_NOW, fixed_clock

REAL_IDS = {
    "BTC": 1, "ETH": 1027, "USDT": 825, "BNB": 1839, "SOL": 5426, "XRP": 52, "USDC": 3408,
    "ADA": 2010, "DOGE": 74, "TRX": 1958, "AVAX": 5805, "DOT": 6636, "LINK": 1975,
    "MATIC": 3890, "LTC": 2, "SHIB": 5994,
}  # fmt: skip
STABLES = (825, 3408, 4943)


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(seed=42, clock=fixed_clock)


@pytest.fixture(scope="module")
def snapshot(market):
    return market.snapshot()


def test_market_has_at_least_200_unique_coins(snapshot):
    assert len(snapshot) >= 200
    for field in ("id", "slug", "name"):
        assert len({c[field] for c in snapshot}) == len(snapshot)


def test_market_uses_real_ids_for_well_known_coins(market):
    for symbol, coin_id in REAL_IDS.items():
        assert market.by_id[coin_id].symbol == symbol


def test_market_has_a_shared_ticker(snapshot):
    sol = [c["id"] for c in snapshot if c["symbol"] == "SOL"]
    assert len(sol) >= 2 and 5426 in sol


def test_market_same_seed_and_clock_is_identical(snapshot):
    assert Market(seed=42, clock=fixed_clock).snapshot() == snapshot


def test_market_different_seed_differs(market):
    other = Market(seed=43, clock=fixed_clock)
    minute = market.now_minute()
    assert other.price(1, minute) != market.price(1, minute)


def test_market_price_is_a_pure_function_of_seed_coin_minute(market):
    minute = market.now_minute() - 12_345
    later_clock = Market(seed=42, clock=lambda: datetime(2031, 1, 1, tzinfo=UTC))
    assert later_clock.price(5426, minute) == market.price(5426, minute)


def test_market_percent_changes_agree_with_history(market, snapshot):
    minute = market.now_minute()
    for coin in snapshot[:50]:
        quote = coin["quote"]["USD"]
        for window, minutes in CHANGE_WINDOWS.items():
            before = market.price(coin["id"], minute - minutes)
            expected = (quote["price"] / before - 1) * 100
            assert quote[f"percent_change_{window}"] == pytest.approx(expected, rel=1e-9, abs=1e-9)
        volume_before = market.volume_24h(coin["id"], minute - 1440)
        expected_volume = (quote["volume_24h"] / volume_before - 1) * 100
        assert quote["volume_change_24h"] == pytest.approx(expected_volume, rel=1e-9)


def test_market_history_exists_30_days_back(market):
    minute = market.now_minute()
    for coin_id in (1, 1027, 5426):
        series = [market.price(coin_id, minute - k * 60) for k in range(30 * 24 + 1)]
        assert all(p > 0 and math.isfinite(p) for p in series)


def test_market_cap_and_fdmc_follow_price_and_supply(snapshot):
    for coin in snapshot:
        quote = coin["quote"]["USD"]
        assert quote["market_cap"] == pytest.approx(quote["price"] * coin["circulating_supply"])
        dilution = coin["max_supply"] if coin["max_supply"] is not None else coin["total_supply"]
        assert quote["fully_diluted_market_cap"] == pytest.approx(quote["price"] * dilution)


def test_market_dominance_sums_to_100(snapshot):
    dominance = [c["quote"]["USD"]["market_cap_dominance"] for c in snapshot if c["is_active"]]
    assert sum(dominance) == pytest.approx(100.0)
    assert snapshot[0]["symbol"] == "BTC" and dominance[0] > 30


def test_market_ranks_follow_market_cap(snapshot):
    active = [c for c in snapshot if c["is_active"]]
    assert [c["cmc_rank"] for c in active] == list(range(1, len(active) + 1))
    caps = [c["quote"]["USD"]["market_cap"] for c in active]
    assert caps == sorted(caps, reverse=True)


def test_market_supply_ordering(snapshot):
    for coin in snapshot:
        assert 0 < coin["circulating_supply"] <= coin["total_supply"]
        if coin["max_supply"] is None:
            assert coin["infinite_supply"] is True
        else:
            assert coin["total_supply"] <= coin["max_supply"] and coin["infinite_supply"] is False


def test_market_volume_positive_and_plausible(snapshot):
    for coin in snapshot:
        quote = coin["quote"]["USD"]
        assert 0 < quote["volume_24h"] < 10 * quote["market_cap"]


def test_market_stablecoins_stay_near_one(market):
    minute = market.now_minute()
    for coin_id in STABLES:
        prices = [market.price(coin_id, minute - k * 60) for k in range(0, 30 * 24, 7)]
        assert all(0.98 < p < 1.02 for p in prices), (coin_id, min(prices), max(prices))


def test_market_last_updated_is_the_minute(snapshot):
    stamp = FIXED_NOW.strftime("%Y-%m-%dT%H:%M:00.000Z")
    for coin in snapshot[:5]:
        assert coin["last_updated"] == stamp == coin["quote"]["USD"]["last_updated"]
