"""FX rates client against the simulator's Frankfurter shape and a replaying server."""

from __future__ import annotations

from decimal import Decimal

import pytest

from moonwatch.errors import SourceRejectedError, SourceResponseError, SourceUnavailableError
from moonwatch.sources.fx import fetch_usd_rates

from .support import Canned

CURRENCIES = ["EUR", "SEK", "NOK", "DKK", "GBP"]


def frankfurter(rates, base="USD", day="2025-05-07"):
    return {"amount": 1.0, "base": base, "date": day, "rates": rates}


def no_sleep(_seconds: float) -> None:
    pass


def test_fetch_usd_rates_from_simulator(simulator):
    fx = fetch_usd_rates(f"{simulator.url}/frankfurter", ["usd", *CURRENCIES], timeout=5)
    assert set(fx.rates) == {"USD", *CURRENCIES} and fx.rates["USD"] == Decimal(1)
    assert all(isinstance(v, Decimal) and v > 0 for v in fx.rates.values())
    assert Decimal("0.8") < fx.rates["EUR"] < Decimal("1.05")
    assert fx.as_of_date.isoformat() == "2025-05-07" and fx.source == "simulator"


def test_fetch_usd_rates_keeps_exact_decimals(replay):
    server = replay(Canned(200, '{"amount":1.0,"base":"USD","date":"2025-05-07",'
                                 '"rates":{"EUR":0.88123}}'))  # fmt: skip
    fx = fetch_usd_rates(server.url, ["EUR"])
    assert fx.rates["EUR"] == Decimal("0.88123") and fx.source == "frankfurter"
    assert "base=USD" in server.paths[0] and "symbols=EUR" in server.paths[0]


def test_fetch_usd_rates_missing_currency_raises(replay):
    server = replay(Canned(200, frankfurter({"EUR": 0.9})))
    with pytest.raises(SourceResponseError, match=r"missing \['SEK'\]"):
        fetch_usd_rates(server.url, ["EUR", "SEK"])


@pytest.mark.parametrize("bad", [0, -1.5, "1.2", None])
def test_fetch_usd_rates_rejects_non_positive_rates(replay, bad):
    server = replay(Canned(200, frankfurter({"EUR": 0.9, "SEK": bad})))
    with pytest.raises(SourceResponseError, match="SEK"):
        fetch_usd_rates(server.url, ["EUR", "SEK"])


def test_fetch_usd_rates_rejects_other_base(replay):
    server = replay(Canned(200, frankfurter({"SEK": 11.2}, base="EUR")))
    with pytest.raises(SourceResponseError, match="base 'EUR'"):
        fetch_usd_rates(server.url, ["SEK"])


def test_fetch_usd_rates_unknown_currency_is_rejected(simulator):
    with pytest.raises(SourceRejectedError, match="HTTP 404"):
        fetch_usd_rates(f"{simulator.url}/frankfurter", ["EUR", "XXX"])


def test_fetch_usd_rates_retries_transient_errors(replay):
    server = replay(Canned(503, "down"), Canned(200, frankfurter({"EUR": 0.9})))
    fx = fetch_usd_rates(server.url, ["EUR"], sleep=no_sleep)
    assert fx.rates["EUR"] == Decimal("0.9") and server.count == 2


def test_fetch_usd_rates_gives_up_after_attempts(replay):
    server = replay(Canned(502, "bad gateway"))
    with pytest.raises(SourceUnavailableError):
        fetch_usd_rates(server.url, ["EUR"], max_attempts=2, sleep=no_sleep)
    assert server.count == 2


def test_fetch_usd_rates_non_json_is_a_response_error(replay):
    server = replay(Canned(200, "<html>moved</html>"))
    with pytest.raises(SourceResponseError, match="not JSON"):
        fetch_usd_rates(server.url, ["EUR"])
