"""Unit tests of the dashboard's figures: pure functions, no browser, no database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pandas as pd

from streamlit_app import charts


def hourly(symbols: list[str], hours: int = 5) -> pd.DataFrame:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i, symbol in enumerate(symbols):
        for h in range(hours):
            price = 100.0 * (i + 1) + h
            rows.append(
                {
                    "coin_id": i,
                    "symbol": symbol,
                    "hour_at": start + timedelta(hours=h),
                    "open_price": price,
                    "high_price": price + 2,
                    "low_price": price - 2,
                    "close_price": price + 1,
                }
            )
    return pd.DataFrame(rows)


def test_coin_colors_are_stable_and_distinct():
    first = charts.coin_colors(["BTC", "ETH", "PEPE", "WIF", "SHIB"])
    again = charts.coin_colors(["SHIB", "WIF", "PEPE", "ETH", "BTC", "BTC"])
    assert first == again
    assert first["BTC"] == charts.BRAND_COLORS["BTC"]
    assert len(set(first.values())) == len(first)


def test_coin_colors_keep_brand_colours_whatever_else_is_shown():
    assert charts.coin_colors(["SOL"])["SOL"] == charts.coin_colors(["SOL", "BTC", "XYZ"])["SOL"]


def test_price_chart_draws_candles_for_one_coin():
    colors = charts.coin_colors(["BTC"])
    fig = charts.price_chart(hourly(["BTC"]), colors, "EUR")
    assert [t.type for t in fig.data] == ["candlestick"]
    assert fig.data[0].increasing.line.color == colors["BTC"]
    buttons = [b.label for b in fig.layout.xaxis.rangeselector.buttons]
    assert buttons == ["24h", "7d", "30d", "all"]


def test_price_chart_draws_a_line_per_coin_for_several():
    colors = charts.coin_colors(["BTC", "ETH"])
    fig = charts.price_chart(hourly(["BTC", "ETH"]), colors, "USD")
    assert [(t.type, t.name, t.line.color) for t in fig.data] == [
        ("scatter", "BTC", colors["BTC"]),
        ("scatter", "ETH", colors["ETH"]),
    ]
    assert fig.layout.yaxis.type == "log"


def test_percent_change_chart_opens_on_the_last_week_of_a_long_history():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    frame = pd.DataFrame(
        {
            "symbol": "BTC",
            "last_updated_at": [start + timedelta(days=d) for d in range(20)],
            "percent_change_24h": range(20),
        }
    )
    fig = charts.percent_change_chart(frame, "percent_change_24h", {"BTC": "#F7931A"})
    assert fig.data[0].line.color == "#F7931A"
    assert fig.layout.title.text == "24h change"
    low, high = (pd.Timestamp(x) for x in fig.layout.xaxis.range)
    assert high - low == pd.Timedelta(days=7)


def test_top_10_charts_colour_by_coin_and_keep_rank_order():
    top = pd.DataFrame(
        {
            "rank": [2, 1],
            "symbol": ["ETH", "BTC"],
            "name": ["Ethereum", "Bitcoin"],
            "market_cap": [4e11, 1.2e12],
            "volume_24h": [1e10, 3e10],
        }
    )
    colors = charts.coin_colors(["BTC", "ETH"])
    donut = charts.market_cap_donut(top, colors, "EUR")
    assert list(donut.data[0].labels) == ["BTC", "ETH"]
    assert list(donut.data[0].marker.colors) == [colors["BTC"], colors["ETH"]]
    assert donut.data[0].hole > 0
    bars = charts.volume_bars(top, colors, "EUR")
    assert list(bars.data[0].x) == ["BTC", "ETH"]
    assert list(bars.data[0].marker.color) == [colors["BTC"], colors["ETH"]]
    assert bars.data[0].text[0] == "€30.00 B"


def _polyline(svg: str) -> list[tuple[float, float]]:
    points = re.search(r'<polyline points="([^"]+)"', svg).group(1)
    return [tuple(float(v) for v in pair.split(",")) for pair in points.split()]


def test_sparkline_draws_every_value_oldest_left_highest_on_top():
    svg = charts.sparkline_svg(
        [10.0, None, 30.0, float("nan"), 20.0], "#F7931A", title="BTC closes", width=100, height=20
    )
    assert svg.startswith("<svg") and "<title>BTC closes</title>" in svg
    assert 'stroke="#F7931A"' in svg
    # Unusable values are skipped; x runs left to right across the width.
    assert _polyline(svg) == [(0.0, 19.0), (50.0, 1.0), (100.0, 10.0)]


def test_sparkline_needs_two_values_and_draws_a_flat_line_flat():
    assert charts.sparkline_svg([5.0], "#000000", title="t") == ""
    assert charts.sparkline_svg([], "#000000", title="t") == ""
    flat = _polyline(charts.sparkline_svg([7.0, 7.0, 7.0], "#000000", title="t", height=20))
    assert len({y for _x, y in flat}) == 1
