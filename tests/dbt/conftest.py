"""Fixtures for the dbt tests: raw-row factories and a dbt runner on the real warehouse."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from moonwatch.dbt.runner import DbtResult, run_dbt
from tests.dbt.support import iso, raw_quote_message


@pytest.fixture(scope="session")
def dbt_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One target/log folder for the session: partial parsing stays warm, runs never collide
    with a developer's dbt_project/target."""
    return tmp_path_factory.mktemp("dbt")


@pytest.fixture
def dbt(warehouse_url: str, dbt_workdir: Path) -> Callable[..., DbtResult]:
    """Factory: run one dbt command on the test warehouse, e.g. ``dbt("build")``."""

    def _run(*args: str, check: bool = True) -> DbtResult:
        return run_dbt(
            list(args),
            warehouse_url=warehouse_url,
            target_path=dbt_workdir / "target",
            log_path=dbt_workdir / "logs",
            check=check,
        )

    return _run


@pytest.fixture
def insert_quote(warehouse: psycopg.Connection) -> Callable[..., None]:
    """Factory: one quote message into raw.crypto_quotes, as the loader writes it."""

    def _insert(
        coin_id: int,
        price: float,
        last_updated: datetime,
        *,
        loaded_at: datetime | None = None,
        quote_currency: str = "USD",
        source: str = "simulator",
        conn: psycopg.Connection | None = None,
        **fields: Any,
    ) -> None:
        """``loaded_at`` None stamps the insert's clock time, as the loader does; ``conn``
        inserts in another connection (e.g. inside a transaction left open)."""
        message = raw_quote_message(
            coin_id,
            price,
            last_updated,
            source=source,
            quote_currency=quote_currency,
            **fields,
        )
        (conn or warehouse).execute(
            "insert into raw.crypto_quotes (coin_id, quote_currency, last_updated, message,"
            " kafka_topic, kafka_partition, kafka_offset, loaded_at)"
            " values (%s, %s, %s, %s, 'crypto', 0, 0, coalesce(%s, clock_timestamp()))"
            " on conflict do nothing",
            (coin_id, quote_currency, last_updated, Jsonb(message), loaded_at),
        )

    return _insert


@pytest.fixture
def insert_listings(warehouse: psycopg.Connection) -> Callable[..., None]:
    """Factory: one listings snapshot; coins as (coin_id, market_cap, volume_24h) tuples."""

    def _insert(
        snapshot_at: datetime,
        coins: list[tuple[int, float | None, float | None]],
        *,
        loaded_at: datetime | None = None,
        quote_currency: str = "USD",
        source: str = "coinmarketcap",
        ranked_by: tuple[str, ...] = ("market_cap", "volume_24h"),
    ) -> None:
        # By default one snapshot under both rankings, as one listings run stores it (the
        # market-cap listing and the volume listing at the same snapshot_at).
        for (coin_id, market_cap, volume), ranking in itertools.product(coins, ranked_by):
            coin = {
                "id": coin_id,
                "name": f"Coin {coin_id}",
                "symbol": f"C{coin_id}",
                "slug": f"coin-{coin_id}",
                "cmc_rank": coin_id,
                "num_market_pairs": 10,
                "circulating_supply": 100.0,
                "total_supply": 100.0,
                "max_supply": None,
                "infinite_supply": True,
                "last_updated": iso(snapshot_at),
                "date_added": "2013-04-28T00:00:00.000Z",
                "tags": ["mineable", "pow"],
                "platform": None,
                "quote": {
                    quote_currency: {
                        "price": 2.5,
                        "volume_24h": volume,
                        "volume_change_24h": -1.25,
                        "percent_change_1h": 0.5,
                        "percent_change_24h": 1.0,
                        "percent_change_7d": 2.0,
                        "percent_change_30d": 3.0,
                        "market_cap": market_cap,
                        "market_cap_dominance": 1.0,
                        "fully_diluted_market_cap": market_cap,
                        "last_updated": iso(snapshot_at),
                    }
                },
            }
            warehouse.execute(
                "insert into raw.crypto_listings"
                " (snapshot_at, coin_id, quote_currency, source, ranked_by, coin, loaded_at)"
                " values (%s, %s, %s, %s, %s, %s, coalesce(%s, clock_timestamp()))",
                (snapshot_at, coin_id, quote_currency, source, ranking, Jsonb(coin), loaded_at),
            )

    return _insert


@pytest.fixture
def insert_fx(warehouse: psycopg.Connection) -> Callable[..., None]:
    """Factory: one daily rate (units of currency per 1 USD)."""

    def _insert(
        as_of_date: date,
        currency: str,
        rate_per_usd: float,
        *,
        loaded_at: datetime | None = None,
        source: str = "frankfurter",
    ) -> None:
        warehouse.execute(
            "insert into raw.fx_rates (as_of_date, currency, rate_per_usd, source, loaded_at)"
            " values (%s, %s, %s, %s, coalesce(%s, clock_timestamp()))",
            (as_of_date, currency, rate_per_usd, source, loaded_at),
        )

    return _insert


@pytest.fixture
def query(warehouse: psycopg.Connection) -> Callable[..., list[dict[str, Any]]]:
    """Factory: rows of a query as dicts."""

    def _query(sql: str, *params: Any) -> list[dict[str, Any]]:
        with warehouse.cursor(row_factory=dict_row) as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    return _query
