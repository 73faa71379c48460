"""AppTest tests of the dashboard's empty, partial and broken states (no stack traces)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from tests.dashboard import marts_data
from tests.dashboard.test_app import metric, page_text, run_app

pytestmark = pytest.mark.integration


def test_app_explains_missing_marts(loader, dashboard_env):
    marts_data.drop_marts(loader)
    at = run_app()

    assert not at.exception
    assert not at.get("plotly_chart")
    text = page_text(at)
    assert "No market data yet" in text
    assert "`marts.latest_quotes`: not built yet" in text
    assert "make up" in text and "first producer run" in text


def test_app_explains_empty_marts(loader, dashboard_env):
    marts_data.create_marts(loader)
    try:
        at = run_app()
    finally:
        marts_data.drop_marts(loader)

    assert not at.exception
    text = page_text(at)
    assert "No market data yet" in text
    assert "`marts.latest_quotes`: no rows yet" in text
    assert "make up" in text


def test_app_shows_quotes_even_when_other_marts_are_missing(loader, dashboard_env):
    marts_data.fill_small(loader)
    for table in ("cap_top_10", "pipeline_health", "coin_price_hourly"):
        loader.execute(f"drop table marts.{table}")
    try:
        at = run_app()
    finally:
        marts_data.drop_marts(loader)

    assert not at.exception
    assert metric(at, "BTC price").value == "$60,000.00"
    text = page_text(at)
    assert "`marts.cap_top_10` does not exist yet" in text
    assert "`marts.pipeline_health` does not exist yet" in text
    assert "`marts.coin_price_hourly` does not exist yet" in text
    assert len(at.get("plotly_chart")) == 5  # 4 percent-change + volume bars


def test_app_names_the_setting_when_the_database_is_unreachable(
    pg, monkeypatch, clear_streamlit_caches, unreachable_url
):
    monkeypatch.setenv("MOONWATCH_DASHBOARD_DB_URL", unreachable_url)
    at = run_app()

    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert "MOONWATCH_DASHBOARD_DB_URL" in message
    assert "make status" in message
    password = make_url(unreachable_url).password
    assert password and password not in page_text(at)


def test_app_hides_the_password_when_the_login_fails(pg, monkeypatch, clear_streamlit_caches):
    url = make_url(pg.dashboard_db_url).set(password="not-the-password-s3cr3t")
    monkeypatch.setenv("MOONWATCH_DASHBOARD_DB_URL", url.render_as_string(hide_password=False))
    at = run_app()

    assert not at.exception
    assert "MOONWATCH_DASHBOARD_DB_URL" in at.error[0].value
    assert "s3cr3t" not in page_text(at)


def test_app_names_the_setting_when_it_is_unset(monkeypatch, clear_streamlit_caches):
    monkeypatch.delenv("MOONWATCH_DASHBOARD_DB_URL", raising=False)
    at = run_app()

    assert not at.exception
    assert "MOONWATCH_DASHBOARD_DB_URL is not set" in at.error[0].value
    assert "make up" in at.error[0].value


def test_app_names_a_bad_setting_instead_of_crashing(dashboard_env, monkeypatch):
    monkeypatch.setenv("MOONWATCH_DASHBOARD_REFRESH_SECONDS", "soon")
    at = run_app()

    assert not at.exception
    assert len(at.error) == 1
    assert "MOONWATCH_DASHBOARD_REFRESH_SECONDS: Input should be a valid integer" in (
        at.error[0].value
    )
