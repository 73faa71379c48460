"""AppTest tests of the dashboard page against the real test Postgres and hand-made marts."""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from streamlit_app import first_paint
from tests.dashboard.conftest import APP_PATH
from tests.dashboard.marts_data import TOP_10_AGE, eur_rate_at

pytestmark = pytest.mark.integration

PLOTLY_CHARTS = 7  # price, 4 percent-change, donut, bars


def run_app(**session: object) -> AppTest:
    at = AppTest.from_file(str(APP_PATH), default_timeout=60)
    for key, value in session.items():
        at.session_state[key] = value
    return at.run()


def metric(at: AppTest, label: str):
    found = [m for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return found[0]


def figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def values(array: object) -> list:
    """Plotly 7 sends numeric arrays as base64 typed arrays; lists stay lists."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def sparkline_points(headline: str) -> list[str]:
    """The points of the sparkline in a headline card: inline SVG, or an image of one."""
    encoded = re.search(r"data:image/svg\+xml;base64,([^\"]+)", headline)
    svg = base64.b64decode(encoded.group(1)).decode() if encoded else headline
    return re.search(r'<polyline points="([^"]+)"', svg).group(1).split()


def hours_in_last_day(hours: Iterable[datetime], before: datetime, after: datetime) -> set[int]:
    """How many of ``hours`` (hour stamps with data) a sparkline drawn between ``before`` and
    ``after`` may show: those of the page clock's current hour and the 23 before it. Two
    answers only when the clock crossed an hour during the run."""
    counts = set()
    for at in (before, after):
        current = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        counts.add(sum(current - timedelta(hours=23) <= h <= current for h in hours))
    return counts


def page_text(at: AppTest) -> str:
    parts = []
    for kind in ("error", "warning", "info", "markdown", "caption", "exception", "badge", "html"):
        parts += [str(getattr(el, "value", el)) for el in at.get(kind)]
    parts += [f"{m.label} {m.value} {m.delta}" for m in at.metric]
    return "\n".join(parts)


# -- with data --------------------------------------------------------------------------------


def test_app_renders_every_section(small_marts, dashboard_env):
    at = run_app()

    assert not at.exception
    assert not at.error
    assert [m.label for m in at.metric if m.label.endswith(" price")] == [
        "BTC price",
        "ETH price",
        "SOL price",
    ]
    assert at.multiselect(key="coins").value == [1, 1027, 5426]
    assert metric(at, "BTC price").value == "$60,000.00"
    assert metric(at, "Change 1h").delta == "+0.50%"
    assert metric(at, "Dominance").value == "55.25%"
    assert metric(at, "Circulating supply").value == "19.80 M BTC"
    assert len(at.get("plotly_chart")) == PLOTLY_CHARTS
    text = page_text(at)
    assert "SIMULATED DATA" in text
    # The newest fetch was 38 s before the fixture's "now", plus the test's own seconds.
    assert re.search(r"updated \d+ s ago", text)
    assert "2 rejected in the last hour" in text


@pytest.mark.parametrize(
    ("currency", "expected_price", "expected_cap", "expected_volume"),
    [
        # hand-computed: USD value x rate_per_usd of the is_latest row
        ("EUR", "€55,200.00", "€1.10 T", "€32.20 B"),  # 60000x0.92, 1.2e12x0.92, 3.5e10x0.92
        ("SEK", "630,000.00 SEK", "12.60 T SEK", "367.50 B SEK"),  # x10.5
        ("NOK", "648,000.00 NOK", "12.96 T NOK", "378.00 B NOK"),  # x10.8
        ("DKK", "414,000.00 DKK", "8.28 T DKK", "241.50 B DKK"),  # x6.9
    ],
)
def test_app_converts_money_with_the_latest_rate(
    small_marts, dashboard_env, currency, expected_price, expected_cap, expected_volume
):
    at = run_app()
    at.segmented_control(key="currency").set_value(currency).run()

    assert not at.exception
    assert metric(at, "BTC price").value == expected_price
    assert metric(at, "Market cap").value == expected_cap
    assert metric(at, "Volume 24h").value == expected_volume
    # Percent figures are not converted.
    assert metric(at, "Change 1h").delta == "+0.50%"
    assert metric(at, "Change 24h").delta == "-1.25%"
    assert metric(at, "Dominance").value == "55.25%"


def day_rate(small_marts, stamp: str) -> float:
    """The EUR rate for a point at ``stamp`` (naive UTC, as Plotly has it)."""
    return eur_rate_at(small_marts, stamp)


def test_app_converts_ohlc_and_top_10_in_the_charts(small_marts, dashboard_env):
    rate = small_marts.rates["EUR"]
    at = run_app()
    at.multiselect(key="coins").set_value([1])
    at.segmented_control(key="currency").set_value("EUR").run()

    assert not at.exception
    price, *_pct, donut, bars = figures(at)
    candles = price["data"][0]
    assert candles["type"] == "candlestick"
    btc = small_marts.coins["BTC"]
    # Each hour at its own day's rate: today 0.92, yesterday 0.5.
    expected = [btc.price * day_rate(small_marts, x) for x in candles["x"]]
    assert values(candles["open"]) == pytest.approx(expected)
    assert values(candles["open"])[-1] == pytest.approx(btc.price * rate)
    assert donut["data"][0]["type"] == "pie"
    assert donut["data"][0]["labels"][0] == "BTC"
    # The newest snapshot converts at its own day's rate (yesterday's just after midnight).
    top_rate = day_rate(small_marts, str(small_marts.now - TOP_10_AGE))
    assert values(donut["data"][0]["values"])[0] == pytest.approx(btc.market_cap * top_rate)
    btc_bar = list(bars["data"][0]["x"]).index("BTC")
    assert values(bars["data"][0]["y"])[btc_bar] == pytest.approx(btc.volume_24h * top_rate)


def test_app_keeps_one_colour_per_coin_across_charts(small_marts, dashboard_env):
    at = run_app()
    price, pct_1h, *_rest, donut, bars = figures(at)
    line_colours = {t["name"]: t["line"]["color"] for t in price["data"]}
    assert line_colours == {t["name"]: t["line"]["color"] for t in pct_1h["data"]}
    pie = dict(zip(donut["data"][0]["labels"], donut["data"][0]["marker"]["colors"], strict=True))
    bar = dict(zip(bars["data"][0]["x"], bars["data"][0]["marker"]["color"], strict=True))
    for symbol, colour in line_colours.items():
        assert pie[symbol] == colour
        assert bar[symbol] == colour
    assert len(set(pie.values())) == len(pie)  # ten coins, ten colours


def test_app_falls_back_to_usd_without_a_rate(small_marts, dashboard_env):
    at = run_app()
    at.segmented_control(key="currency").set_value("GBP").run()

    assert not at.exception
    assert any("No GBP exchange rate" in w.value for w in at.warning)
    assert metric(at, "BTC price").value == "$60,000.00"


def test_app_one_coin_draws_candles_several_draw_lines(small_marts, dashboard_env):
    at = run_app()
    assert {t["type"] for t in figures(at)[0]["data"]} == {"scatter"}
    at.multiselect(key="coins").set_value([5426]).run()
    assert figures(at)[0]["data"][0]["type"] == "candlestick"
    assert [m.label for m in at.metric if m.label.endswith(" price")] == ["SOL price"]


def test_app_without_coins_asks_for_one(small_marts, dashboard_env):
    at = run_app()
    at.multiselect(key="coins").set_value([]).run()
    assert not at.exception
    assert any("Pick at least one coin" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) == 2  # the top-10 charts stay


def test_app_draws_a_sparkline_of_the_last_24_hourly_closes_per_coin(small_marts, dashboard_env):
    at = run_app()
    before = datetime.now(UTC)
    at.segmented_control(key="currency").set_value("EUR").run()
    after = datetime.now(UTC)

    headlines = [h.value for h in at.get("html") if "data:image/svg" in h.value]
    symbols = [re.search(r"<strong>(.*?)</strong>", h).group(1) for h in headlines]
    assert symbols == ["BTC", "ETH", "SOL"]
    btc = headlines[0]
    assert "hourly closes of the last 24 h (EUR)" in btc
    points = sparkline_points(btc)
    # The fixture wrote 49 hourly rows up to its own hour: 24 of them lie in the page's last
    # day, or 23 once the clock has moved into an hour the fixture wrote no row for.
    hour0 = small_marts.newest_update.replace(minute=0, second=0)
    written = [hour0 - timedelta(hours=h) for h in range(49)]
    assert len(points) in hours_in_last_day(written, before, after)
    assert len(points) >= 23


def test_app_holds_the_rest_of_a_fresh_page_behind_the_headline_once(
    small_marts, dashboard_env, monkeypatch
):
    """A browser session's first run waits once, after the headline cards and before anything
    below them, so the browser paints the cards before the charts' code arrives; the
    session's later runs (the refresh, a new pick) do not wait. The page's waits are recorded
    instead of slept (only the hold's: Streamlit's own sleeps go on)."""
    waits: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if sys._getframe(1).f_code.co_filename == first_paint.__file__:
            waits.append(seconds)
        else:
            real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    at = run_app()
    assert not at.exception
    assert len(waits) == 1
    assert 0 <= waits[0] <= first_paint.FIRST_PAINT_SECONDS
    assert len(at.get("plotly_chart")) == PLOTLY_CHARTS

    at.multiselect(key="coins").set_value([1]).run()
    assert not at.exception
    assert waits == waits[:1]
    assert [m.label for m in at.metric if m.label.endswith(" price")] == ["BTC price"]
