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


def raw_quote_message(
    coin_id: int,
    price: float,
    last_updated: datetime,
    *,
    source: str = "simulator",
    quote_currency: str = "USD",
    fetched_at: datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """One QuoteMessage as raw.crypto_quotes keeps it (``message``), with figures derived from
    ``price`` so tests can compute what the marts must hold; ``fields`` override any key."""
    symbol, name = COINS[coin_id]
    return {
        "schema_version": 1,
        "source": source,
        "coin_id": coin_id,
        "symbol": symbol,
        "name": name,
        "slug": name.lower(),
        "cmc_rank": 1,
        "num_market_pairs": 100,
        "circulating_supply": 1000.0,
        "total_supply": 1000.0,
        "max_supply": None,
        "infinite_supply": False,
        "quote_currency": quote_currency,
        "price": price,
        "volume_24h": price * 10,
        "volume_change_24h": 1.5,
        "percent_change_1h": 0.1,
        "percent_change_24h": 1.0,
        "percent_change_7d": 7.0,
        "percent_change_30d": 30.0,
        "market_cap": price * 1000,
        "market_cap_dominance": 50.0,
        "fully_diluted_market_cap": price * 1000,
        "last_updated": iso(last_updated),
        "fetched_at": iso(fetched_at or last_updated),
        **fields,
    }


def run_results(dbt_workdir: Path) -> dict[str, dict[str, Any]]:
    """The last dbt command's results by node name (a data test's name without its hash)."""
    results = json.loads((dbt_workdir / "target" / "run_results.json").read_text())["results"]
    return {_node_name(r["unique_id"]): r for r in results}


def _node_name(unique_id: str) -> str:
    parts = unique_id.split(".")
    return parts[2] if parts[0] == "test" else parts[-1]
