"""Regenerate docs/dashboard.png (the README's screenshot) from weeks of realistic data.

Not part of `make test` (the `docs` marker is deselected there), because it rewrites a committed
file: run it with `make docs-screenshot`.
"""

from __future__ import annotations

import pytest

from tests.dashboard import marts_data
from tests.dashboard.conftest import PROJECT_ROOT
from tests.dashboard.test_browser import dashboard_page, screenshot, serve_dashboard
from tests.dashboard.test_browser import stop as stop_dashboard

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docs]


def test_docs_screenshot(pg, loader, tmp_path):
    marts_data.fill_rich(loader)
    process, url = serve_dashboard(pg.dashboard_db_url, tmp_path / "streamlit.log")
    try:
        with dashboard_page(url) as page:
            target = PROJECT_ROOT / "docs" / "dashboard.png"
            target.parent.mkdir(exist_ok=True)
            screenshot(page, target)
    finally:
        stop_dashboard(process)
        marts_data.drop_rich_extras(loader)
        marts_data.drop_marts(loader)
