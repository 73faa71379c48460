"""Shared constants and helpers for the dbt tests (importable, unlike conftest)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

T0 = datetime(2025, 1, 1, 10, 0, tzinfo=UTC)
COINS = {1: ("BTC", "Bitcoin"), 1027: ("ETH", "Ethereum"), 5426: ("SOL", "Solana")}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def run_results(dbt_workdir: Path) -> dict[str, dict[str, Any]]:
    """The last dbt command's results by node name (a data test's name without its hash)."""
    results = json.loads((dbt_workdir / "target" / "run_results.json").read_text())["results"]
    return {_node_name(r["unique_id"]): r for r in results}


def _node_name(unique_id: str) -> str:
    parts = unique_id.split(".")
    return parts[2] if parts[0] == "test" else parts[-1]
