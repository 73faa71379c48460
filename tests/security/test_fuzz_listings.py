"""Fuzzed listings/latest replies through the real client into ``raw.crypto_listings``.

One coin PostgreSQL cannot store (NUL, NaN, a lone surrogate, an id past ``integer``) used to
abort the whole snapshot with a driver error on every retry; later it was skipped with only a
warning. Now every coin either lands in ``raw.crypto_listings`` (valid under the quote
contract's rules, so the staging casts can read it) or in ``raw.crypto_listings_rejected`` with
its reason: the rest of the snapshot lands and nothing is lost.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from moonwatch.errors import SourceError
from moonwatch.warehouse.listings import load_listings_snapshot
from tests.factories import listing_coin
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


def _quarantined(conn: psycopg.Connection, snapshot_at: datetime) -> list[tuple[str, str]]:
    return conn.execute(
        "select coin_id, reason from raw.crypto_listings_rejected where snapshot_at = %s"
        " order by rejected_id",
        (snapshot_at,),
    ).fetchall()


@pytest.fixture
def listings(warehouse: psycopg.Connection) -> psycopg.Connection:
    warehouse.execute("truncate raw.crypto_listings_rejected")
    return warehouse


def test_unstorable_coins_are_quarantined_with_a_reason_not_fatal(
    listings: psycopg.Connection,
) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    good = listing_coin(1)
    good["last_updated"] = good["quote"]["USD"]["last_updated"] = "2025-12-31T23:59:00Z"
    assert load_listings_snapshot(listings, [*POISON_COINS, good], at, "USD", "coinmarketcap") == 1
    assert _stored(listings, at) == {1}
    quarantined = _quarantined(listings, at)
    assert [c for c, _ in quarantined] == ["11", "12", "13", str(2**31), "14"]
    assert all(reason.strip() for _, reason in quarantined)
    assert "NUL" in quarantined[0][1] and "not storable as JSON" in quarantined[1][1]


def test_fuzzed_listings_snapshots_load(listings: psycopg.Connection) -> None:
    warehouse = listings
    client, adapter = _in_memory_client()
    loaded = {"snapshots": 0, "coins": 0, "quarantined": 0}
    # After every well-formed time the strategies make: a valid coin is never "future".
    start = datetime(2030, 2, 1, tzinfo=UTC)

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(seeds)
    def run(rng: random.Random) -> None:
        # Mostly-clean and badly damaged snapshots: both the stored and the quarantined path.
        poison = Poison(rng, bad_rate=rng.choice((0.02, 0.2)))
        coins = [poison.coin(1, rng.choice((rng.randint(1, 10**6), 2**31, -5))) for _ in range(8)]
        status = {"error_code": 0, "credit_count": 1}
        adapter.reply = (200, dumps({"status": status, "data": coins}), "application/json")
        try:
            result = client.listings_latest(limit=10)
        except SourceError:
            return
        at = start + timedelta(minutes=loaded["snapshots"])
        inserted = load_listings_snapshot(warehouse, result.coins, at, "USD", "coinmarketcap")
        stored = _stored(warehouse, at)
        quarantined = _quarantined(warehouse, at)
        assert inserted == len(stored) <= len(result.coins)
        assert stored <= {c["id"] for c in result.coins}
        assert len(stored) + len(quarantined) == len(result.coins)  # every coin accounted for
        assert all(reason.strip() for _, reason in quarantined)
        loaded["snapshots"] += 1
        loaded["coins"] += len(stored)
        loaded["quarantined"] += len(quarantined)

    with client:
        run()
    assert loaded["snapshots"] > 100 and loaded["coins"] > 50, loaded
    assert loaded["quarantined"] > 150, loaded
