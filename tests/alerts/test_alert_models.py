"""The alert dbt models build and pass their own tests (the unit test pins the logic of each
rule kind on fixed rows; the data tests run in every scheduled build)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.dbt.support import run_results

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_alert_models_build_with_unit_and_data_tests(
    alert_db: psycopg.Connection, dbt: Callable[..., Any], dbt_workdir: Path
) -> None:
    dbt("run", "--select", "+alert_conditions")
    dbt("build", "--select", "alert_conditions", "alert_events")
    results = run_results(dbt_workdir)
    assert results["test_alert_conditions_price_cross_move_and_stale"]["status"] == "pass"
    assert results["alert_conditions"]["status"] == "success"
    assert results["alert_events"]["status"] == "success"
    tests = [name for name, r in results.items() if r["unique_id"].startswith("test.")]
    assert len(tests) >= 6 and all(results[name]["status"] == "pass" for name in tests)
