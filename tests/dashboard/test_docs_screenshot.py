"""Regenerate docs/dashboard.png (the README's screenshot) from weeks of realistic data.

Not part of `make test` (the `docs` marker is deselected there), because it rewrites a committed
file: run it with `make docs-screenshot`.
"""

from __future__ import annotations

import pytest

from tests.dashboard import marts_data
from tests.dashboard.conftest import PROJECT_ROOT, require_chromium
from tests.dashboard.test_browser import CHROMIUM_ARGS, PLOTLY_CHARTS, screenshot, serve_dashboard
from tests.dashboard.test_browser import stop as stop_dashboard

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docs]


def test_docs_screenshot(pg, loader, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    chromium_path = require_chromium()

    marts_data.fill_rich(loader)
    process, url = serve_dashboard(pg.dashboard_db_url, tmp_path / "streamlit.log")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(url, wait_until="domcontentloaded")
                charts = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')
                expect(charts).to_have_count(PLOTLY_CHARTS, timeout=60_000)
                target = PROJECT_ROOT / "docs" / "dashboard.png"
                target.parent.mkdir(exist_ok=True)
                screenshot(page, target)
            finally:
                browser.close()
    finally:
        stop_dashboard(process)
        marts_data.drop_marts(loader)
