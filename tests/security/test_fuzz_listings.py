"""Fuzzed listings/latest replies through the real client into ``raw.crypto_listings``.

One coin PostgreSQL cannot store (NUL, NaN, a lone surrogate, an id past ``integer``) used to
abort the whole snapshot with a driver error on every retry; now it is skipped with a warning
and the rest of the snapshot lands.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from moonwatch.errors import SourceError
from moonwatch.warehouse.snapshots import load_listings_snapshot
from tests.security.strategies import Poison, dumps, seeds
from tests.security.test_fuzz_cmc import _in_memory_client

pytestmark = pytest.mark.integration

POISON_COINS = [
    {"id": 11, "name": "Bit\x00coin", "quote": {}},
    {"id": 12, "name": "ok", "quote": {"USD": {"price": float("nan")}}},
    {"id": 13, "name": "\ud800", "quote": {}},
    {"id": 2**31, "name": "too big", "quote": {}},
    {"id": 14, "name": "🚀\u202e", "quote": {"USD": {"price": 1.0}}},
]


def _stored(conn: psycopg.Connection, snapshot_at: datetime) -> set[int]:
    rows = conn.execute(
        "select coin_id from raw.crypto_listings where snapshot_at = %s", (snapshot_at,)
    ).fetchall()
    return {r[0] for r in rows}


def test_unstorable_coins_are_skipped_not_fatal(warehouse: psycopg.Connection) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert load_listings_snapshot(warehouse, POISON_COINS, at, "USD", "coinmarketcap") == 1
    assert _stored(warehouse, at) == {14}


def test_fuzzed_listings_snapshots_load(warehouse: psycopg.Connection) -> None:
    client, adapter = _in_memory_client()
    loaded = {"snapshots": 0, "coins": 0}
    start = datetime(2026, 2, 1, tzinfo=UTC)

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(seeds)
    def run(rng: random.Random) -> None:
        poison = Poison(rng, bad_rate=0.2)
        coins = [poison.coin(1, rng.choice((rng.randint(1, 10**6), 2**31, -5))) for _ in range(8)]
        status = {"error_code": 0, "credit_count": 1}
        adapter.reply = (200, dumps({"status": status, "data": coins}), None)
        try:
            result = client.listings_latest(limit=10)
        except SourceError:
            return
        at = start + timedelta(minutes=loaded["snapshots"])
        inserted = load_listings_snapshot(warehouse, result.coins, at, "USD", "coinmarketcap")
        stored = _stored(warehouse, at)
        assert inserted == len(stored) <= len(result.coins)
        assert stored <= {c["id"] for c in result.coins}
        loaded["snapshots"] += 1
        loaded["coins"] += len(stored)

    with client:
        run()
    assert loaded["snapshots"] > 100 and loaded["coins"] > 150, loaded
