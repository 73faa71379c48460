"""Write the day's FX reference rates straight to ``raw.fx_rates`` (no Kafka).

Idempotent: a rate is keyed by its source, date and currency (a re-published day replaces the
earlier figures), so a retried task never makes a second copy, and simulated rates never
overwrite real ones. Every rate is validated first (``moonwatch.messages``); what fails is kept
in ``raw.fx_rates_rejected`` with the reason.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import psycopg

from moonwatch.messages import InvalidMessage, validate_fx_rate
from moonwatch.sources.fx import FxRates
from moonwatch.warehouse.rejected import payload_text

logger = logging.getLogger(__name__)


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
            payload = payload_text({"as_of_date": str(rates.as_of_date), currency: str(rate)})
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
