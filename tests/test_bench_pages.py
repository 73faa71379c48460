"""The benchmark's reference pages (bench/dashboard.py) run as Streamlit scripts: the ceiling
draws one chart, the seven-chart floor seven, and the floor holds its charts for as long as
its environment says, as the dashboard holds them behind its headline."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from bench.dashboard import CEILING_PAGE, HOLD_ENV, SEVEN_CHART_PAGE


@pytest.mark.parametrize(("page", "charts"), [(CEILING_PAGE, 1), (SEVEN_CHART_PAGE, 7)])
def test_a_reference_page_draws_its_headline_and_charts(page, charts, monkeypatch) -> None:
    monkeypatch.delenv(HOLD_ENV, raising=False)
    at = AppTest.from_string(page, default_timeout=60).run()
    assert not at.exception
    assert [m.label for m in at.metric] == ["BTC price"]
    assert len(at.get("plotly_chart")) == charts


def test_the_seven_chart_floor_holds_its_charts_for_the_set_seconds(monkeypatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # the page's own sleep, not waited for
    monkeypatch.setenv(HOLD_ENV, "0.7")
    at = AppTest.from_string(SEVEN_CHART_PAGE, default_timeout=60).run()
    assert not at.exception
    assert 0.7 in slept
