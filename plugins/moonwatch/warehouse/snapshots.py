"""Write listings snapshots, FX rates and the credit ledger straight to ``raw`` (no Kafka).

Each write is idempotent: a snapshot is keyed by its time and coin, a rate by its date and
currency, so a retried task never makes a second copy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from moonwatch.sources.fx import FxRates

logger = logging.getLogger(__name__)


def load_listings_snapshot(
    conn: psycopg.Connection,
    coins: Sequence[dict[str, Any]],
    snapshot_at: datetime,
    quote_currency: str,
    source: str,
) -> int:
    """Insert one snapshot (one row per coin); returns rows new to the table."""
    stored = [(coin["id"], _jsonb_text(coin)) for coin in coins if _storable_id(coin.get("id"))]
    rows = [(snapshot_at, i, quote_currency, source, text) for i, text in stored if text]
    if len(rows) < len(coins):
        logger.warning(
            "listings snapshot: skipped %d coin(s) PostgreSQL cannot store (id outside integer, "
            "NaN/Infinity, NUL or broken Unicode in the source's JSON)",
            len(coins) - len(rows),
        )
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "insert into raw.crypto_listings (snapshot_at, coin_id, quote_currency, source, coin)"
            " values (%s, %s, %s, %s, %s::jsonb)"
            " on conflict (snapshot_at, coin_id) do nothing",
            rows,
        )
        inserted = cur.rowcount
    logger.info("listings snapshot %s: %d coins", snapshot_at.isoformat(), len(rows))
    return inserted if inserted >= 0 else len(rows)


def _storable_id(value: Any) -> bool:
    return type(value) is int and 0 < value < 2**31


def _jsonb_text(coin: dict[str, Any]) -> str | None:
    """The coin as JSON that jsonb accepts, else None: one odd coin must not fail the snapshot."""
    try:
        text = json.dumps(coin, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")  # lone surrogates
    except (ValueError, UnicodeEncodeError, RecursionError):
        return None
    return None if "\\u0000" in text else text


def load_fx_rates(conn: psycopg.Connection, rates: FxRates) -> int:
    """Upsert one day's rates (a re-published day replaces the earlier figures)."""
    rows = [
        (rates.as_of_date, cur, rate, rates.source) for cur, rate in sorted(rates.rates.items())
    ]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "insert into raw.fx_rates (as_of_date, currency, rate_per_usd, source)"
            " values (%s, %s, %s, %s)"
            " on conflict (as_of_date, currency) do update set"
            " rate_per_usd = excluded.rate_per_usd, source = excluded.source,"
            " loaded_at = clock_timestamp()",
            rows,
        )
    return len(rows)


class PostgresLedgerStore:
    """The credit ledger in ``raw.cmc_credit_ledger``: durable, shared by every worker."""

    def __init__(self, url: str) -> None:
        self._url = url

    def get(self, month: str) -> int:
        with psycopg.connect(self._url) as conn:
            row = conn.execute(
                "select credits from raw.cmc_credit_ledger where month = %s", (month,)
            ).fetchone()
        return row[0] if row else 0

    def add(self, month: str, credits: int) -> int:
        with psycopg.connect(self._url) as conn:
            row = conn.execute(
                "insert into raw.cmc_credit_ledger (month, credits) values (%s, %s)"
                " on conflict (month) do update set"
                " credits = raw.cmc_credit_ledger.credits + excluded.credits, updated_at = now()"
                " returning credits",
                (month, credits),
            ).fetchone()
        return row[0]
