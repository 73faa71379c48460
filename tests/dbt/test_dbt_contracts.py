"""The marts the dashboard reads have enforced dbt contracts that say what the build really
makes, and the dashboard tests' stand-in marts (tests/dashboard/marts_data.py) have exactly
those types."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.dashboard import marts_data

pytestmark = pytest.mark.integration

COLUMN_TYPES = (
    "select table_name, column_name, data_type from information_schema.columns"
    " where table_schema = 'marts' and table_name = any(%s) order by table_name, ordinal_position"
)


def _dashboard_marts(manifest: dict) -> list[str]:
    """The models models/exposures.yml says the dashboard reads."""
    (exposure,) = [e for e in manifest["exposures"].values() if e["type"] == "dashboard"]
    return sorted(manifest["nodes"][node]["name"] for node in exposure["depends_on"]["nodes"])


def _types(conn: psycopg.Connection, marts: list[str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for table, column, data_type in conn.execute(COLUMN_TYPES, (marts,)).fetchall():
        found.setdefault(table, {})[column] = data_type
    return found


def test_dashboard_marts_contracts_match_the_build_and_the_test_stand_ins(
    dbt: Callable[..., Any], dbt_workdir: Path, warehouse_url: str
) -> None:
    dbt("run")  # fails by itself if a model's SQL no longer matches its contract
    manifest = json.loads((dbt_workdir / "target" / "manifest.json").read_text())
    marts = _dashboard_marts(manifest)
    assert "latest_quotes" in marts and "pipeline_health" in marts
    for name in marts:
        node = manifest["nodes"][f"model.moonwatch.{name}"]
        assert node["config"]["contract"]["enforced"], f"{name} has no enforced contract"
        assert all(column["data_type"] for column in node["columns"].values()), name
    contracts = {name: marts_data.contract_types(name) for name in marts}
    with psycopg.connect(warehouse_url) as conn:
        built = _types(conn, marts)
        # Names, types and order: what the build made is what the contracts declare, spelled
        # as Postgres reports it (which the stand-ins' DDL reuses verbatim).
        assert {name: list(types.items()) for name, types in built.items()} == {
            name: list(types.items()) for name, types in contracts.items()
        }
        # The stand-ins, created inside a transaction that is rolled back (the built marts stay).
        marts_data.create_marts(conn)
        marts_data.create_rich_extras(conn)
        stand_ins = _types(conn, marts)
        conn.rollback()
    assert set(stand_ins) == set(marts)
    for name, types in stand_ins.items():
        assert types == {column: built[name][column] for column in types}, name


def test_a_mart_without_an_enforced_contract_cannot_type_a_stand_in() -> None:
    # alert_conditions (read by the alerts, not the dashboard) declares no contract.
    with pytest.raises(ValueError, match="no enforced contract for alert_conditions"):
        marts_data.contract_types("alert_conditions")
    with pytest.raises(ValueError, match=r"no column \['price_usd'\]"):
        marts_data.columns_ddl("latest_quotes", ["coin_id", "price_usd"])
