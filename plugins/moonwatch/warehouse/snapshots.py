"""Write listings snapshots, FX rates and the credit ledger straight to ``raw`` (no Kafka).

Each write is idempotent: a snapshot is keyed by its source, time and coin, a rate by its
source, date and currency, so a retried task never makes a second copy, and simulated data
never overwrites real data. Every coin and rate is validated first with the quote contract's
rules (``moonwatch.messages``); what fails is kept in ``raw.*_rejected`` with the reason.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from moonwatch.messages import InvalidMessage, parse_listing_coin, validate_fx_rate
from moonwatch.sources.fx import FxRates

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
                (source, snapshot_at, quote_currency, _brief_id(coin), _payload(coin), e.reason)
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
    return None if value is None else _payload(value)[:40]


def _payload(value: Any) -> str:
    """Hostile input as text a Postgres ``text`` column holds: escaped, bounded."""
    try:
        # ASCII escapes keep NUL and lone surrogates as \u0000 text; repr covers the rest.
        text = json.dumps(value, ensure_ascii=True, default=repr)
    except (ValueError, RecursionError):
        text = repr(value).encode("ascii", "backslashreplace").decode()
    return text.replace("\x00", "\\x00")[:_MAX_PAYLOAD_CHARS]


_MAX_PAYLOAD_CHARS = 20_000


def load_fx_rates(conn: psycopg.Connection, rates: FxRates) -> int:
    """Upsert one day's rates (a re-published day replaces the earlier figures).

    Each rate is validated first (``validate_fx_rate``: a plausible date, an ISO code, a rate
    the staging cast to double precision can read); the others go to ``raw.fx_rates_rejected``
    with the reason. Returns the number of rates written.
    """
    now = datetime.now(UTC)
    rows: list[tuple[Any, ...]] = []
    rejected: list[tuple[Any, ...]] = []
    for currency, rate in sorted(rates.rates.items()):
        try:
            valid = validate_fx_rate(rates.as_of_date, currency, rate, rates.source, now)
        except InvalidMessage as e:
            payload = _payload({"as_of_date": str(rates.as_of_date), currency: str(rate)})
            rejected.append(
                (
                    str(rates.source)[:40],
                    str(rates.as_of_date)[:40],
                    currency[:40],
                    payload,
                    e.reason,
                )
            )
            continue
        rows.append((valid.as_of_date, valid.currency, valid.rate_per_usd, valid.source))
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "insert into raw.fx_rates (as_of_date, currency, rate_per_usd, source)"
            " values (%s, %s, %s, %s)"
            " on conflict (source, as_of_date, currency) do update set"
            " rate_per_usd = excluded.rate_per_usd, loaded_at = clock_timestamp()",
            rows,
        )
        if rejected:
            cur.executemany(
                "insert into raw.fx_rates_rejected"
                " (source, as_of_date, currency, payload, reason) values (%s, %s, %s, %s, %s)",
                rejected,
            )
    if rejected:
        logger.warning(
            "FX rates of %s: %d quarantined in raw.fx_rates_rejected, first: %s",
            rates.as_of_date,
            len(rejected),
            rejected[0][-1],
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
