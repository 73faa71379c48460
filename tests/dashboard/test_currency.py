"""Unit tests of the dashboard's currency conversion (no services)."""

from __future__ import annotations

import pandas as pd
import pytest

from streamlit_app import currency

RATES = currency.fx_history(
    pd.DataFrame(
        {
            "currency": ["EUR", "SEK", "USD", "eur"],
            "rate_per_usd": [0.92, 10.5, 1.0, 0.5],
            "as_of_date": ["2026-11-27", "2026-11-27", "2026-11-27", "2026-11-25"],
        }
    )
)


@pytest.mark.parametrize(
    ("requested", "shown", "rate"),
    [("USD", "USD", None), ("EUR", "EUR", 0.92), ("SEK", "SEK", 10.5)],
)
def test_resolve_fx_uses_the_newest_rate_per_usd(requested, shown, rate):
    choice = currency.resolve_fx(RATES, "USD", requested)
    assert (choice.currency, choice.rate, choice.problem) == (shown, rate, None)


def test_resolve_fx_falls_back_to_home_without_a_rate():
    choice = currency.resolve_fx(RATES, "USD", "GBP")
    assert choice.currency == "USD"
    assert "No GBP exchange rate" in choice.problem
    assert currency.resolve_fx(RATES, "EUR", "GBP").currency == "EUR"


def test_resolve_fx_without_any_rates_still_knows_usd():
    assert currency.resolve_fx(currency.fx_history(None), "USD", "USD").problem is None
    assert currency.resolve_fx(currency.fx_history(pd.DataFrame()), "USD", "EUR").problem


def test_resolve_fx_crosses_through_usd_for_another_home():
    assert currency.resolve_fx(RATES, "EUR", "SEK").rate == pytest.approx(10.5 / 0.92)


def quotes(*rows: tuple[str, float, str]) -> pd.DataFrame:
    """(quote_currency, price, day) rows with a percent column that must never change."""
    return pd.DataFrame(
        {
            "quote_currency": [r[0] for r in rows],
            "price": [r[1] for r in rows],
            "percent_change_1h": 1.5,
            "at": pd.to_datetime([r[2] for r in rows], utc=True),
        }
    )


def test_convert_rows_converts_each_row_from_its_own_currency():
    # After MOONWATCH_QUOTE_CURRENCY changed from USD to EUR the page holds rows of both.
    frame = quotes(("USD", 100.0, "2026-11-27 12:00"), ("EUR", 92.0, "2026-11-27 13:00"))
    in_eur = currency.convert_rows(frame, ("price",), RATES, "EUR", at="at")
    assert in_eur["price"].tolist() == pytest.approx([92.0, 92.0])  # the EUR row untouched
    assert in_eur["quote_currency"].tolist() == ["EUR", "EUR"]
    assert in_eur["percent_change_1h"].tolist() == [1.5, 1.5]
    in_usd = currency.convert_rows(frame, ("price",), RATES, "USD", at="at")
    assert in_usd["price"].tolist() == pytest.approx([100.0, 100.0])
    assert frame["price"].tolist() == [100.0, 92.0]  # the input is untouched


def test_convert_rows_never_converts_twice():
    frame = quotes(("USD", 100.0, "2026-11-27 12:00"))
    once = currency.convert_rows(frame, ("price",), RATES, "SEK", at="at")
    twice = currency.convert_rows(once, ("price",), RATES, "SEK", at="at")
    assert twice["price"].tolist() == once["price"].tolist() == pytest.approx([1050.0])


def test_convert_rows_uses_each_days_own_rate_and_carries_it_over_gaps():
    # EUR rates exist for Wednesday 25th (0.5) and Friday 27th (0.92) only.
    frame = quotes(
        ("USD", 100.0, "2026-11-24 10:00"),  # before the first rate: the earliest one
        ("USD", 100.0, "2026-11-25 23:59"),  # its own day
        ("USD", 100.0, "2026-11-26 08:00"),  # Thursday: carried from Wednesday
        ("USD", 100.0, "2026-11-27 00:00"),  # Friday's rate
        ("USD", 100.0, "2026-11-29 18:00"),  # Sunday: carried from Friday
    )
    out = currency.convert_rows(frame, ("price",), RATES, "EUR", at="at")
    assert out["price"].tolist() == pytest.approx([50.0, 50.0, 50.0, 92.0, 92.0])


def test_convert_rows_without_a_rate_shows_no_number_rather_than_a_wrong_one():
    frame = quotes(("GBP", 10.0, "2026-11-27 12:00"), ("USD", 10.0, "2026-11-27 12:00"))
    out = currency.convert_rows(frame, ("price",), RATES, "EUR", at="at")
    assert pd.isna(out["price"].iloc[0]) and out["quote_currency"].iloc[0] == "GBP"
    assert out["price"].iloc[1] == pytest.approx(9.2)


def test_prefer_currency_keeps_the_current_currency_in_a_switchover_hour():
    frame = pd.DataFrame(
        {
            "coin_id": [1, 1, 1, 2],
            "hour_at": ["h1", "h2", "h2", "h2"],
            "quote_currency": ["USD", "USD", "EUR", "USD"],
            "close_price": [1.0, 2.0, 3.0, 4.0],
        }
    )
    out = currency.prefer_currency(frame, ["coin_id", "hour_at"], {1: "EUR", 2: "USD"})
    assert out[["coin_id", "hour_at", "quote_currency"]].values.tolist() == [
        [1, "h1", "USD"],
        [1, "h2", "EUR"],
        [2, "h2", "USD"],
    ]


def test_newest_fx_date_is_the_rates_own_date():
    assert str(currency.newest_fx_date(RATES)) == "2026-11-27"
    assert currency.newest_fx_date(currency.fx_history(None)) is None
