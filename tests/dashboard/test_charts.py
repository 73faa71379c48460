"""Unit tests of the dashboard's figures: pure functions, no browser, no database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from streamlit_app import charts


def hourly(symbols: list[str], hours: int = 5, ids: list[int] | None = None) -> pd.DataFrame:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i, symbol in enumerate(symbols):
        for h in range(hours):
            price = 100.0 * (i + 1) + h
            rows.append(
                {
                    "coin_id": ids[i] if ids else i,
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
    first = charts.coin_colors([1, 1027, 24478, 28752, 5994])
    again = charts.coin_colors([5994, 28752, 24478, 1027, 1, 1])
    assert first == again
    assert first[1] == charts.BRAND_COLORS[1]
    assert len(set(first.values())) == len(first)


def test_coin_colors_keep_brand_colours_whatever_else_is_shown():
    assert charts.coin_colors([5426])[5426] == charts.coin_colors([5426, 1, 99999])[5426]


def test_coin_colors_give_a_borrowed_ticker_no_brand_colour():
    colors = charts.coin_colors([1, 31337])  # 31337 calls itself "BTC" too
    assert colors[1] == charts.BRAND_COLORS[1] and colors[31337] != colors[1]


def test_price_chart_draws_candles_for_one_coin():
    colors = charts.coin_colors([0])
    fig = charts.price_chart(hourly(["BTC"]), colors, {0: "BTC"}, "EUR")
    assert [t.type for t in fig.data] == ["candlestick"]
    assert fig.data[0].increasing.line.color == colors[0]
    buttons = [b.label for b in fig.layout.xaxis.rangeselector.buttons]
    assert buttons == ["24h", "7d", "30d", "all"]


def test_price_chart_draws_a_line_per_coin_for_several():
    colors = charts.coin_colors([0, 1])
    fig = charts.price_chart(hourly(["BTC", "ETH"]), colors, {0: "BTC", 1: "ETH"}, "USD")
    assert [(t.type, t.name, t.line.color) for t in fig.data] == [
        ("scatter", "BTC", colors[0]),
        ("scatter", "ETH", colors[1]),
    ]
    assert fig.layout.yaxis.type == "log"


def test_price_chart_keeps_two_coins_with_one_ticker_apart():
    frame = hourly(["BTC", "BTC"], ids=[1, 31337])
    labels = {1: "BTC · Bitcoin", 31337: "BTC · Bitcoin Gold Fork"}
    colors = charts.coin_colors([1, 31337])
    fig = charts.price_chart(frame, colors, labels, "USD")
    assert [t.type for t in fig.data] == ["scatter", "scatter"]  # two coins, not one candle
    assert [t.name for t in fig.data] == list(labels.values())
    assert fig.data[0].line.color != fig.data[1].line.color
    pct = frame.rename(columns={"hour_at": "last_updated_at", "close_price": "percent_change_1h"})
    lines = charts.percent_change_chart(pct, "percent_change_1h", colors, labels)
    assert [t.name for t in lines.data] == list(labels.values())


def test_charts_show_hostile_names_as_text():
    hostile = '<a href="javascript:alert(1)">x</a><img src=x onerror=alert(1)>'
    frame = hourly(["BTC"], ids=[7])
    fig = charts.price_chart(frame, {}, {7: hostile}, "USD")
    assert "<" not in fig.data[0].name and "&lt;a href=" in fig.data[0].name
    assert "<img" not in fig.layout.title.text
    top = pd.DataFrame(
        {
            "rank": [1],
            "coin_id": [7],
            "symbol": [hostile],
            "name": [hostile],
            "market_cap": [1e9],
            "volume_24h": [1e8],
        }
    )
    donut = charts.market_cap_donut(top, {}, {}, "USD")
    assert "<" not in donut.data[0].labels[0] and "<" not in donut.data[0].customdata[0][0]
    bars = charts.volume_bars(top, {}, {}, "USD")
    assert "<" not in bars.data[0].x[0] and "<" not in bars.data[0].customdata[0]


def test_percent_change_chart_opens_on_the_last_week_of_a_long_history():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    frame = pd.DataFrame(
        {
            "coin_id": 1,
            "last_updated_at": [start + timedelta(days=d) for d in range(20)],
            "percent_change_24h": range(20),
        }
    )
    fig = charts.percent_change_chart(frame, "percent_change_24h", {1: "#F7931A"}, {1: "BTC"})
    assert fig.data[0].line.color == "#F7931A"
    assert fig.layout.title.text == "24h change"
    low, high = (pd.Timestamp(x) for x in fig.layout.xaxis.range)
    assert high - low == pd.Timedelta(days=7)


def test_top_10_charts_colour_by_coin_and_keep_rank_order():
    top = pd.DataFrame(
        {
            "rank": [2, 1],
            "coin_id": [1027, 1],
            "symbol": ["ETH", "BTC"],
            "name": ["Ethereum", "Bitcoin"],
            "market_cap": [4e11, 1.2e12],
            "volume_24h": [1e10, 3e10],
        }
    )
    colors = charts.coin_colors([1, 1027])
    labels = {1: "BTC", 1027: "ETH"}
    donut = charts.market_cap_donut(top, colors, labels, "EUR")
    assert list(donut.data[0].labels) == ["BTC", "ETH"]
    assert list(donut.data[0].marker.colors) == [colors[1], colors[1027]]
    assert donut.data[0].hole > 0
    bars = charts.volume_bars(top, colors, labels, "EUR")
    assert list(bars.data[0].x) == ["BTC", "ETH"]
    assert list(bars.data[0].marker.color) == [colors[1], colors[1027]]
    assert bars.data[0].text[0] == "€30.00 B"


def test_top_10_charts_give_two_coins_with_one_ticker_two_slices():
    top = pd.DataFrame(
        {
            "rank": [1, 2],
            "coin_id": [1, 31337],
            "symbol": ["BTC", "BTC"],
            "name": ["Bitcoin", "Bitcoin Gold Fork"],
            "market_cap": [1.2e12, 4e11],
            "volume_24h": [3e10, 1e10],
        }
    )
    donut = charts.market_cap_donut(top, {}, {}, "USD")
    assert list(donut.data[0].labels) == ["BTC · Bitcoin", "BTC · Bitcoin Gold Fork"]
    bars = charts.volume_bars(top, {}, {}, "USD")
    assert list(bars.data[0].x) == ["BTC · Bitcoin", "BTC · Bitcoin Gold Fork"]


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


def test_sparkline_escapes_its_title():
    svg = charts.sparkline_svg([1.0, 2.0], "#000000", title='"><img src=x onerror=alert(1)>')
    assert "<img" not in svg and 'aria-label="&quot;&gt;&lt;img' in svg
    with pytest.raises(ValueError, match="RRGGBB"):
        charts.sparkline_svg([1.0, 2.0], 'red" onload="alert(1)', title="t")
