"""Unit tests of the dashboard's conversion and formatting (no services)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from streamlit_app import transform as tf

RATES = tf.fx_history(
    pd.DataFrame(
        {
            "currency": ["EUR", "SEK", "USD", "eur"],
            "rate_per_usd": [0.92, 10.5, 1.0, 0.5],
            "as_of_date": ["2026-11-27", "2026-11-27", "2026-11-27", "2026-11-25"],
        }
    )
)


@pytest.mark.parametrize(
    ("requested", "currency", "rate"),
    [("USD", "USD", None), ("EUR", "EUR", 0.92), ("SEK", "SEK", 10.5)],
)
def test_resolve_fx_uses_the_newest_rate_per_usd(requested, currency, rate):
    choice = tf.resolve_fx(RATES, "USD", requested)
    assert (choice.currency, choice.rate, choice.problem) == (currency, rate, None)


def test_resolve_fx_falls_back_to_home_without_a_rate():
    choice = tf.resolve_fx(RATES, "USD", "GBP")
    assert choice.currency == "USD"
    assert "No GBP exchange rate" in choice.problem
    assert tf.resolve_fx(RATES, "EUR", "GBP").currency == "EUR"


def test_resolve_fx_without_any_rates_still_knows_usd():
    assert tf.resolve_fx(tf.fx_history(None), "USD", "USD").problem is None
    assert tf.resolve_fx(tf.fx_history(pd.DataFrame()), "USD", "EUR").problem


def test_resolve_fx_crosses_through_usd_for_another_home():
    assert tf.resolve_fx(RATES, "EUR", "SEK").rate == pytest.approx(10.5 / 0.92)


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
    in_eur = tf.convert_rows(frame, ("price",), RATES, "EUR", at="at")
    assert in_eur["price"].tolist() == pytest.approx([92.0, 92.0])  # the EUR row untouched
    assert in_eur["quote_currency"].tolist() == ["EUR", "EUR"]
    assert in_eur["percent_change_1h"].tolist() == [1.5, 1.5]
    in_usd = tf.convert_rows(frame, ("price",), RATES, "USD", at="at")
    assert in_usd["price"].tolist() == pytest.approx([100.0, 100.0])
    assert frame["price"].tolist() == [100.0, 92.0]  # the input is untouched


def test_convert_rows_never_converts_twice():
    frame = quotes(("USD", 100.0, "2026-11-27 12:00"))
    once = tf.convert_rows(frame, ("price",), RATES, "SEK", at="at")
    twice = tf.convert_rows(once, ("price",), RATES, "SEK", at="at")
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
    out = tf.convert_rows(frame, ("price",), RATES, "EUR", at="at")
    assert out["price"].tolist() == pytest.approx([50.0, 50.0, 50.0, 92.0, 92.0])


def test_convert_rows_without_a_rate_shows_no_number_rather_than_a_wrong_one():
    frame = quotes(("GBP", 10.0, "2026-11-27 12:00"), ("USD", 10.0, "2026-11-27 12:00"))
    out = tf.convert_rows(frame, ("price",), RATES, "EUR", at="at")
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
    out = tf.prefer_currency(frame, ["coin_id", "hour_at"], {1: "EUR", 2: "USD"})
    assert out[["coin_id", "hour_at", "quote_currency"]].values.tolist() == [
        [1, "h1", "USD"],
        [1, "h2", "EUR"],
        [2, "h2", "USD"],
    ]


def test_newest_fx_date_is_the_rates_own_date():
    assert str(tf.newest_fx_date(RATES)) == "2026-11-27"
    assert tf.newest_fx_date(tf.fx_history(None)) is None


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
    assert tf.format_money(value, currency, compact=compact) == text


def test_change_in_money_undoes_the_percent():
    # 24h ago the price was 100, now 110: +10 %, a change of 10.
    assert tf.change_in_money(110, 10) == pytest.approx(10)
    assert tf.format_signed_money(tf.change_in_money(99, -1), "USD") == "-$1.00"
    assert tf.change_in_money(None, 1) is None


def test_format_signed_money_of_a_sub_cent_change_has_no_exponent():
    assert tf.format_signed_money(3e-08, "USD") == "+$0.00000003000"
    assert tf.format_signed_money(-1.234e-6, "EUR") == "-€0.000001234"


def test_format_age():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert tf.format_age(now - timedelta(seconds=40), now) == "40 s ago"
    assert tf.format_age(now - timedelta(minutes=5), now) == "5 min ago"
    assert tf.format_age(now - timedelta(hours=3), now) == "3 h ago"
    assert tf.format_age(now - timedelta(days=4), now) == "4 d ago"
    assert tf.format_age(None, now) == "never"


def test_format_amount_and_percent():
    assert tf.format_amount(19.8e6, "BTC") == "19.80 M BTC"
    assert tf.format_amount(999_999_999, "DOGE") == "1.00 B DOGE"
    assert tf.format_percent(0.5) == "+0.50%"
    assert tf.format_percent(55.25, signed=False) == "55.25%"


def test_is_stale_follows_the_pipeline_stamp_and_the_threshold():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert not tf.is_stale(now - timedelta(seconds=299), 300, now)
    assert tf.is_stale(now - timedelta(seconds=301), 300, now)
    assert tf.is_stale(None, 300, now)
    assert tf.is_stale(pd.NaT, 300, now)


def test_badge_color_of_a_stalled_pipeline_is_never_green():
    assert tf.badge_color(40) == "green"
    assert tf.badge_color(600) == "orange"
    assert tf.badge_color(7200) == "red"
    assert tf.badge_color(None) == "red"


def test_active_source_is_the_one_stamped_most_recently():
    now = pd.Timestamp("2026-01-01 12:00", tz="UTC")
    sources = pd.DataFrame(
        {
            "source": ["coinmarketcap", "simulator"],
            # The simulator's rows carry a source time in 2099, but were fetched long ago.
            "stamped_at": [now, now - pd.Timedelta(days=2)],
            "last_updated_at": [now, pd.Timestamp("2099-01-01", tz="UTC")],
        }
    )
    assert tf.active_source(sources) == "coinmarketcap"
    assert tf.active_source(sources.iloc[::-1]) == "coinmarketcap"
    assert tf.active_source(sources.iloc[1:]) == "simulator"


def test_coin_labels_tell_coins_that_share_a_ticker_apart():
    coins = pd.DataFrame(
        {
            "coin_id": [1, 1027, 31337, 4242, 4243],
            "symbol": ["BTC", "ETH", "BTC", "PEPE", "PEPE"],
            "name": ["Bitcoin", "Ethereum", "Bitcoin Gold Fork", "Pepe", "Pepe"],
        }
    )
    assert tf.coin_labels(coins) == {
        1: "BTC · Bitcoin",
        1027: "ETH",
        31337: "BTC · Bitcoin Gold Fork",
        4242: "PEPE · Pepe #4242",
        4243: "PEPE · Pepe #4243",
    }


def test_last_hours_is_a_day_by_the_clock_not_24_rows():
    now = datetime(2026, 1, 2, 12, 30, tzinfo=UTC)
    # Hourly rows for two days with every third hour missing: 24 rows span about 36 hours.
    hours = [now.replace(minute=0) - timedelta(hours=h) for h in range(48) if h % 3]
    frame = pd.DataFrame({"hour_at": hours, "close_price": range(len(hours))})
    day = tf.last_hours(frame, 24, now)
    assert len(day) == 16
    assert min(day["hour_at"]) == now.replace(minute=0) - timedelta(hours=23)


def test_table_csv_holds_the_shown_figures_and_makes_formulas_inert():
    frame = pd.DataFrame(
        {
            "coin_id": [1, 666],
            "symbol": ["BTC", "=EVIL"],
            "name": ["Bitcoin", '=HYPERLINK("http://attacker.example","x")'],
            "price": [55200.0, -0.5],
            "last_updated_at": pd.to_datetime(["2026-01-01 12:00", "2026-01-01 12:01"], utc=True),
            "quote_currency": ["EUR", "EUR"],
            "not_exported": [1, 2],
        }
    )
    text = tf.table_csv(frame, "quotes", {1: "BTC", 666: "=EVIL"}).decode()
    lines = text.splitlines()
    assert lines[0] == "coin_id,coin,symbol,name,price,last_updated_at,currency"
    assert lines[1] == "1,BTC,BTC,Bitcoin,55200.0,2026-01-01T12:00:00Z,EUR"
    # Text a spreadsheet would run starts with a quote; a negative number stays a number.
    assert lines[2].startswith("666,'=EVIL,'=EVIL,\"'=HYPERLINK(")
    assert ",-0.5,2026-01-01T12:01:00Z,EUR" in lines[2]
