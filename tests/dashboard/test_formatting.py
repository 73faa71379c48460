"""Unit tests of how the dashboard writes numbers and coin names (no services)."""

from __future__ import annotations

import pandas as pd
import pytest

from streamlit_app import formatting as fmt


@pytest.mark.parametrize(
    ("value", "currency", "compact", "text"),
    [
        (60000, "USD", False, "$60,000.00"),
        (0.12345, "EUR", False, "€0.1235"),
        (0.000012345, "USD", False, "$0.00001234"),
        (1.23e-06, "USD", False, "$0.000001230"),
        (0.99996, "USD", False, "$1.00"),
        (999_999_999, "USD", True, "$1.00 B"),
        (999_994_999, "USD", True, "$999.99 M"),
        (999.999, "EUR", True, "€1.00 K"),
        (999_999_999_999_999, "USD", True, "$1,000.00 T"),
        (0.0000005, "USD", True, "$0.0000005000"),
        (630000, "SEK", False, "630,000.00 SEK"),
        (1.2e12, "GBP", True, "£1.20 T"),
        (3.5e10, "NOK", True, "35.00 B NOK"),
        (-5, "USD", False, "-$5.00"),
        (None, "USD", False, "—"),
        (float("nan"), "USD", True, "—"),
    ],
)
def test_format_money(value, currency, compact, text):
    assert fmt.format_money(value, currency, compact=compact) == text


def test_change_in_money_undoes_the_percent():
    # 24h ago the price was 100, now 110: +10 %, a change of 10.
    assert fmt.change_in_money(110, 10) == pytest.approx(10)
    assert fmt.format_signed_money(fmt.change_in_money(99, -1), "USD") == "-$1.00"
    assert fmt.change_in_money(None, 1) is None


def test_format_signed_money_of_a_sub_cent_change_has_no_exponent():
    assert fmt.format_signed_money(3e-08, "USD") == "+$0.00000003000"
    assert fmt.format_signed_money(-1.234e-6, "EUR") == "-€0.000001234"


def test_format_amount_and_percent():
    assert fmt.format_amount(19.8e6, "BTC") == "19.80 M BTC"
    assert fmt.format_amount(999_999_999, "DOGE") == "1.00 B DOGE"
    assert fmt.format_percent(0.5) == "+0.50%"
    assert fmt.format_percent(55.25, signed=False) == "55.25%"


def test_coin_labels_tell_coins_that_share_a_ticker_apart():
    coins = pd.DataFrame(
        {
            "coin_id": [1, 1027, 31337, 4242, 4243],
            "symbol": ["BTC", "ETH", "BTC", "PEPE", "PEPE"],
            "name": ["Bitcoin", "Ethereum", "Bitcoin Gold Fork", "Pepe", "Pepe"],
        }
    )
    assert fmt.coin_labels(coins) == {
        1: "BTC · Bitcoin",
        1027: "ETH",
        31337: "BTC · Bitcoin Gold Fork",
        4242: "PEPE · Pepe #4242",
        4243: "PEPE · Pepe #4243",
    }
