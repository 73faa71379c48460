"""Write listings snapshots straight to ``raw.crypto_listings`` (no Kafka).

Idempotent: a snapshot is keyed by its source, ranking, time and coin, so a retried task never
makes a second copy, and simulated data never overwrites real data. Every coin is validated
first with the quote contract's rules (``moonwatch.messages``); what fails is kept in
``raw.crypto_listings_rejected`` with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from moonwatch.messages import InvalidMessage, parse_listing_coin
from moonwatch.warehouse.rejected import payload_text

logger = logging.getLogger(__name__)


def load_listings_snapshot(
    conn: psycopg.Connection,
    coins: Sequence[dict[str, Any]],
    snapshot_at: datetime,
    quote_currency: str,
    source: str,
    ranked_by: str = "market_cap",
) -> int:
    """Insert one snapshot (one row per valid coin); returns rows new to the table.

    ``ranked_by`` says which listing it is: ``market_cap`` (the top N by market cap) or
    ``volume_24h`` (the market's top coins by 24h volume).

    Each coin is validated with the quote contract's rules (``parse_listing_coin``) first: a
    coin the staging casts could not read (a rank past ``integer``, a 401-digit price, a
    ``date_added`` that is no timestamp) goes to ``raw.crypto_listings_rejected`` with the
    reason, in the same transaction, so one bad coin neither stops the snapshot nor vanishes.
    """
    rows: list[tuple[Any, ...]] = []
    rejected: list[tuple[Any, ...]] = []
    for coin in coins:
        try:
            listing, text = parse_listing_coin(coin, quote_currency, snapshot_at)
        except InvalidMessage as e:
            rejected.append(
                (source, snapshot_at, quote_currency, _brief_id(coin), payload_text(coin), e.reason)
            )
            continue
        rows.append((snapshot_at, listing.id, quote_currency, source, ranked_by, text))
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "insert into raw.crypto_listings"
            " (snapshot_at, coin_id, quote_currency, source, ranked_by, coin)"
            " values (%s, %s, %s, %s, %s, %s::jsonb)"
            " on conflict (source, ranked_by, snapshot_at, coin_id) do nothing",
            rows,
        )
        inserted = cur.rowcount
        if rejected:
            cur.executemany(
                "insert into raw.crypto_listings_rejected"
                " (source, snapshot_at, quote_currency, coin_id, payload, reason)"
                " values (%s, %s, %s, %s, %s, %s)",
                rejected,
            )
    if rejected:
        logger.warning(
            "listings snapshot %s: %d coin(s) quarantined in raw.crypto_listings_rejected, "
            "first: %s",
            snapshot_at.isoformat(),
            len(rejected),
            rejected[0][-1],
        )
    logger.info("listings snapshot %s: %d coins", snapshot_at.isoformat(), len(rows))
    return inserted if inserted >= 0 else len(rows)


def _brief_id(coin: Any) -> str | None:
    value = coin.get("id") if isinstance(coin, dict) else None
    return None if value is None else payload_text(value)[:40]
