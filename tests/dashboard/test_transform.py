"""Unit tests of the dashboard's conversion and formatting (no services)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from streamlit_app import transform as tf

RATES = pd.DataFrame(
    {"currency": ["EUR", "SEK", "USD"], "rate_per_usd": [0.92, 10.5, 1.0], "as_of_date": ["d"] * 3}
)


@pytest.mark.parametrize(
    ("requested", "currency", "factor"),
    [("USD", "USD", 1.0), ("EUR", "EUR", 0.92), ("SEK", "SEK", 10.5)],
)
def test_resolve_fx_uses_rate_per_usd(requested, currency, factor):
    choice = tf.resolve_fx(RATES, "USD", requested)
    assert (choice.currency, choice.factor, choice.problem) == (currency, factor, None)


def test_resolve_fx_falls_back_to_base_without_a_rate():
    choice = tf.resolve_fx(RATES, "USD", "GBP")
    assert choice.currency == "USD" and choice.factor == 1.0
    assert "No GBP exchange rate" in choice.problem


def test_resolve_fx_without_any_rates_still_knows_usd():
    assert tf.resolve_fx(pd.DataFrame(), "USD", "USD").factor == 1.0
    assert tf.resolve_fx(None, "USD", "EUR").problem


def test_resolve_fx_crosses_through_usd_for_another_base():
    choice = tf.resolve_fx(RATES, "EUR", "SEK")
    assert choice.factor == pytest.approx(10.5 / 0.92)


def test_convert_multiplies_money_only():
    frame = pd.DataFrame({"price": [100.0], "percent_change_1h": [1.5], "market_cap": [None]})
    out = tf.convert(frame, tf.QUOTE_MONEY_COLUMNS, 0.5)
    assert out["price"].iloc[0] == 50.0
    assert out["percent_change_1h"].iloc[0] == 1.5
    assert pd.isna(out["market_cap"].iloc[0])
    assert frame["price"].iloc[0] == 100.0  # the input is untouched


@pytest.mark.parametrize(
    ("value", "currency", "compact", "text"),
    [
        (60000, "USD", False, "$60,000.00"),
        (0.12345, "EUR", False, "€0.1235"),
        (0.000012345, "USD", False, "$1.234e-05"),
        (630000, "SEK", False, "630,000.00 SEK"),
        (1.2e12, "GBP", True, "£1.20 T"),
        (3.5e10, "NOK", True, "35.00 B NOK"),
        (-5, "USD", False, "-$5.00"),
        (None, "USD", False, "—"),
        (float("nan"), "USD", True, "—"),
    ],
)
def test_format_money(value, currency, compact, text):
    assert tf.format_money(value, currency, compact=compact) == text


def test_change_in_money_undoes_the_percent():
    # 24h ago the price was 100, now 110: +10 %, a change of 10.
    assert tf.change_in_money(110, 10) == pytest.approx(10)
    assert tf.format_signed_money(tf.change_in_money(99, -1), "USD") == "-$1.00"
    assert tf.change_in_money(None, 1) is None


def test_format_age():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert tf.format_age(now - timedelta(seconds=40), now) == "40 s ago"
    assert tf.format_age(now - timedelta(minutes=5), now) == "5 min ago"
    assert tf.format_age(now - timedelta(hours=3), now) == "3 h ago"
    assert tf.format_age(now - timedelta(days=4), now) == "4 d ago"
    assert tf.format_age(None, now) == "never"


def test_format_amount_and_percent():
    assert tf.format_amount(19.8e6, "BTC") == "19.80 M BTC"
    assert tf.format_percent(0.5) == "+0.50%"
    assert tf.format_percent(55.25, signed=False) == "55.25%"
