"""The dashboard links to the dbt docs that Airflow's api-server serves (Cosmos' plugin)."""

from __future__ import annotations

import pytest

from tests.dashboard.test_app import run_app

pytestmark = pytest.mark.integration


def test_app_links_to_the_dbt_docs_on_the_airflow_url(small_marts, dashboard_env, monkeypatch):
    monkeypatch.setenv("MOONWATCH_AIRFLOW_URL", "http://127.0.0.1:19999/")
    at = run_app()
    assert not at.exception
    captions = [c.value for c in at.caption if "dbt docs" in c.value]
    assert captions, "no link to the dbt docs on the page"
    assert "(<http://127.0.0.1:19999/cosmos/moonwatch/dbt_docs_index.html>)" in captions[0]
