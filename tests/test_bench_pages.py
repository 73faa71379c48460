"""The benchmark's reference pages (bench/dashboard.py) run as Streamlit scripts: the ceiling
draws one chart, the seven-chart floor seven, the first-screen floor the dashboard's header,
pickers and three headline cards before the same seven, and both floors hold their charts for
as long as their environment says, as the dashboard holds them behind its headline."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from bench.dashboard import CEILING_PAGE, FIRST_SCREEN_PAGE, HOLD_ENV, SEVEN_CHART_PAGE
from streamlit_app.market import DEFAULT_COIN_IDS


@pytest.mark.parametrize(("page", "charts"), [(CEILING_PAGE, 1), (SEVEN_CHART_PAGE, 7)])
def test_a_reference_page_draws_its_headline_and_charts(page, charts, monkeypatch) -> None:
    monkeypatch.delenv(HOLD_ENV, raising=False)
    at = AppTest.from_string(page, default_timeout=60).run()
    assert not at.exception
    assert [m.label for m in at.metric] == ["BTC price"]
    assert len(at.get("plotly_chart")) == charts


def test_the_first_screen_floor_draws_the_dashboards_cards_then_seven_charts(monkeypatch) -> None:
    monkeypatch.delenv(HOLD_ENV, raising=False)
    at = AppTest.from_string(FIRST_SCREEN_PAGE, default_timeout=60).run()
    assert not at.exception
    # The dashboard's defaults among the page's 5,000 coins, each with the card's seven figures.
    assert sorted(at.session_state["coins"]) == sorted(DEFAULT_COIN_IDS)
    assert [m.label for m in at.metric if m.label.endswith(" price")] == [
        "BTC price",
        "ETH price",
        "SOL price",
    ]
    assert len(at.metric) == 3 * 7
    assert all(m.value for m in at.metric)
    # The cards' title lines were drawn again with their sparklines.
    assert sum("data:image/svg+xml" in h.proto.body for h in at.get("html")) == 3
    assert len(at.get("plotly_chart")) == 7


@pytest.mark.parametrize("page", [SEVEN_CHART_PAGE, FIRST_SCREEN_PAGE])
def test_a_floor_holds_its_charts_for_the_set_seconds(page, monkeypatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # the page's own sleep, not waited for
    monkeypatch.setenv(HOLD_ENV, "0.7")
    at = AppTest.from_string(page, default_timeout=60).run()
    assert not at.exception
    assert 0.7 in slept
