"""Fixtures for the dashboard tests: hand-made marts in the real test Postgres, and the app's
environment (MOONWATCH_DASHBOARD_DB_URL, fresh Streamlit caches) per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from moonwatch.stack.config import StackConfig
from moonwatch.stack.process import free_port
from tests.dashboard import marts_data

PROJECT_ROOT = Path(__file__).resolve().parents[2]
APP_PATH = PROJECT_ROOT / "streamlit_app" / "app.py"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def loader(pg: StackConfig) -> Iterator[psycopg.Connection]:
    """A loader-role connection (owns schema marts) for the module."""
    with psycopg.connect(pg.warehouse_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def small_marts(loader: psycopg.Connection) -> Iterator[marts_data.SmallData]:
    """Every mart recreated with the hand-made rows; dropped again after the module."""
    data = marts_data.fill_small(loader)
    yield data
    marts_data.drop_marts(loader)


@pytest.fixture
def clear_streamlit_caches() -> Iterator[None]:
    from streamlit_app import queries

    queries.clear_caches()
    yield
    queries.clear_caches()


@pytest.fixture
def dashboard_env(
    pg: StackConfig, monkeypatch: pytest.MonkeyPatch, clear_streamlit_caches: None
) -> str:
    """The app reads the read-only URL of the test Postgres; returns that URL."""
    monkeypatch.setenv("MOONWATCH_DASHBOARD_DB_URL", pg.dashboard_db_url)
    return pg.dashboard_db_url


@pytest.fixture
def unreachable_url(pg: StackConfig) -> str:
    """The dashboard URL with its port moved to one where nothing listens."""
    port = free_port()
    return pg.dashboard_db_url.replace(f":{pg.pg_port}/", f":{port}/")


def require_chromium() -> str:
    """The Chromium binary, or a test FAILURE (not a skip) saying how to install it."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: the browser test needs it. Install it with "
            "`apt-get install chromium` (CI does), or point CHROMIUM_PATH at a binary.",
            pytrace=False,
        )
    return CHROMIUM
