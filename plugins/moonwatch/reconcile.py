"""Reconciliation: ask the source again and check that the marts hold the same numbers.

The pipeline's own tests prove the path on the cases someone thought of; this checks the live
data. A scheduled task samples the source (one ``quotes/latest`` call for the tracked coins,
inside the credit budget; free in offline mode) and records what it said in
``raw.reconciliation``. Once the pipeline has had time to carry the same coin-minute through
Kafka, the loader and dbt, each sample is compared with ``marts.quotes_coins`` for the same
source, coin, currency and ``last_updated``:

- ``matched``: the mart holds that quote and its price, market cap and volume equal the source's;
- ``mismatched``: the mart holds that quote with a different number (the difference is kept);
- ``superseded``: the mart has newer quotes of the coin but not this one; the producer polls once
  a minute and never saw this version, so there is nothing to compare;
- ``not_loaded``: the mart has neither this quote nor a newer one by the deadline.

The sample is read straight from the API's JSON, not through ``messages.build_quote_message``,
so a mapping bug on the pipeline's side shows up as a mismatch instead of agreeing with itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from moonwatch.errors import MoonwatchError, PermanentError
from moonwatch.pacing import RECONCILE_JOB
from moonwatch.pipeline import charge_and_fetch_quotes, connect_warehouse, source_name
from moonwatch.settings import Settings

logger = logging.getLogger(__name__)

# Both sides are IEEE doubles parsed from the same JSON text, so equal means equal; the
# tolerance only absorbs a last-bit difference from a different float parser.
RELATIVE_TOLERANCE = 1e-9
COMPARED_FIELDS = ("price", "market_cap", "volume_24h")
FINAL_STATUSES = ("matched", "mismatched", "superseded", "not_loaded")


class ReconciliationMismatchError(PermanentError):
    """The marts disagree with the source, or lost a quote: loud on purpose."""


class MartsNotBuiltYetError(MoonwatchError):
    """``marts.quotes_coins`` does not exist yet (a fresh install): nothing to compare, which
    is not a failure; the run is skipped with this reason."""


QUOTES_MART = "marts.quotes_coins"


@dataclass(frozen=True)
class Sample:
    """What the source said about one coin, in one currency, at one ``last_updated``."""

    source: str
    coin_id: int
    symbol: str
    quote_currency: str
    last_updated: datetime
    price: float | None
    market_cap: float | None
    volume_24h: float | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else None


def samples_from_coins(
    coins: Sequence[dict[str, Any]], quote_currency: str, source: str
) -> list[Sample]:
    """One sample per coin that carries a quote in ``quote_currency`` with a timestamp."""
    samples = []
    for coin in coins:
        quote = (coin.get("quote") or {}).get(quote_currency)
        if not isinstance(quote, dict) or not isinstance(coin.get("id"), int):
            continue
        last_updated = _timestamp(quote.get("last_updated") or coin.get("last_updated"))
        if last_updated is None:
            continue
        samples.append(
            Sample(
                source=source,
                coin_id=coin["id"],
                symbol=str(coin.get("symbol", ""))[:64],
                quote_currency=quote_currency,
                last_updated=last_updated,
                price=_number(quote.get("price")),
                market_cap=_number(quote.get("market_cap")),
                volume_24h=_number(quote.get("volume_24h")),
            )
        )
    return samples


def sample_source(
    settings: Settings, symbols: str | None = None, ledger_store: Any = None
) -> list[Sample]:
    """Ask the source for the tracked coins once, charging the credit ledger like the producer."""
    coins = charge_and_fetch_quotes(settings, symbols, ledger_store, job=RECONCILE_JOB)
    return samples_from_coins(coins, settings.quote_currency, source_name(settings))


def record_samples(conn: psycopg.Connection, samples: Sequence[Sample], run_id: str) -> int:
    """Store the samples as ``pending`` under ``run_id`` (the Airflow run, or a test's id)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "insert into raw.reconciliation (run_id, source, coin_id, symbol, quote_currency,"
            " last_updated, source_price, source_market_cap, source_volume_24h)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    run_id,
                    s.source,
                    s.coin_id,
                    s.symbol,
                    s.quote_currency,
                    s.last_updated,
                    s.price,
                    s.market_cap,
                    s.volume_24h,
                )
                for s in samples
            ],
        )
    return len(samples)


# One statement classifies every pending sample of the run against the mart. A sample whose
# quote is not in the mart yet stays pending unless ``final`` is set, when it becomes
# not_loaded; a field counts as different when exactly one side is null or the relative
# difference is above the tolerance.
_CLASSIFY = """
with pending as (
    select r.reconciliation_id, r.source, r.coin_id, r.quote_currency, r.last_updated,
           r.source_price, r.source_market_cap, r.source_volume_24h
    from raw.reconciliation as r
    where r.run_id = %(run_id)s and r.status = 'pending'
),
compared as (
    select p.reconciliation_id,
           q.price as mart_price,
           (q.last_updated_at is not null) as in_mart,
           exists (
               select 1 from marts.quotes_coins as newer
               where newer.source = p.source and newer.coin_id = p.coin_id
                 and newer.quote_currency = p.quote_currency
                 and newer.last_updated_at > p.last_updated
           ) as has_newer,
           array_remove(array[
               case when {differs_price} then 'price' end,
               case when {differs_market_cap} then 'market_cap' end,
               case when {differs_volume_24h} then 'volume_24h' end
           ], null) as differing
    from pending as p
    left join marts.quotes_coins as q
      on q.source = p.source and q.coin_id = p.coin_id
     and q.quote_currency = p.quote_currency and q.last_updated_at = p.last_updated
),
decided as (
    select reconciliation_id, mart_price, differing,
           case
               when in_mart and cardinality(differing) = 0 then 'matched'
               when in_mart then 'mismatched'
               when has_newer then 'superseded'
               when %(final)s then 'not_loaded'
           end as status
    from compared
)
update raw.reconciliation as r
set status = d.status, mart_price = d.mart_price, differing_fields = d.differing,
    checked_at = clock_timestamp()
from decided as d
where r.reconciliation_id = d.reconciliation_id and d.status is not null
"""


def _differs(field: str) -> str:
    source, mart = f"p.source_{field}", f"q.{field}"
    return (
        f"(q.last_updated_at is not null and (({source} is null) <> ({mart} is null)"
        f" or abs({source} - {mart}) > {RELATIVE_TOLERANCE}"
        f" * greatest(abs({source}), abs({mart}))))"
    )


CLASSIFY_SQL = _CLASSIFY.format(**{f"differs_{f}": _differs(f) for f in COMPARED_FIELDS})


def classify(conn: psycopg.Connection, run_id: str, *, final: bool) -> dict[str, int]:
    """Decide what can be decided for the run's samples; returns the count per status."""
    if conn.execute("select to_regclass(%s)", (QUOTES_MART,)).fetchone()[0] is None:
        if final:
            raise MartsNotBuiltYetError(
                f"{QUOTES_MART} does not exist yet (the first dbt build has not finished): "
                f"nothing to compare for run {run_id}; the next hourly run will"
            )
    else:
        with conn.transaction():
            conn.execute(CLASSIFY_SQL, {"run_id": run_id, "final": final})
    rows = conn.execute(
        "select status, count(*) from raw.reconciliation where run_id = %s group by status",
        (run_id,),
    ).fetchall()
    return {status: count for status, count in rows}


def is_settled(counts: dict[str, int]) -> bool:
    """True once no sample of the run waits for its quote any more."""
    return counts.get("pending", 0) == 0


def report(conn: psycopg.Connection, run_id: str) -> dict[str, Any]:
    """Close the run (what is still missing is not_loaded) and fail loudly on any difference."""
    counts = classify(conn, run_id, final=True)
    bad = conn.execute(
        "select symbol, coin_id, quote_currency, last_updated, status, source_price, mart_price,"
        " differing_fields from raw.reconciliation where run_id = %s"
        " and status in ('mismatched', 'not_loaded') order by coin_id limit 20",
        (run_id,),
    ).fetchall()
    summary = {status: counts.get(status, 0) for status in FINAL_STATUSES}
    logger.info("reconciliation %s: %s", run_id, summary)
    if bad:
        lines = [
            f"{symbol} (id {coin_id}, {currency}) at {updated:%Y-%m-%d %H:%M:%S}Z: {status}"
            + (
                f", {', '.join(fields)} differ (source price {src}, mart price {mart})"
                if status == "mismatched"
                else ", not in marts.quotes_coins (check crypto_quotes_load and crypto_transform)"
            )
            for symbol, coin_id, currency, updated, status, src, mart, fields in bad
        ]
        raise ReconciliationMismatchError(
            f"the marts disagree with the source for {len(bad)} sample(s) of run {run_id} "
            f"({summary}):\n" + "\n".join(lines)
        )
    return summary


def sample_task(settings: Settings, run_id: str, symbols: str | None = None) -> dict[str, Any]:
    """Task body: sample the source and store the samples as pending."""
    samples = sample_source(settings, symbols)
    with connect_warehouse(settings, autocommit=True) as conn:
        stored = record_samples(conn, samples, run_id)
    return {"run_id": run_id, "sampled": stored, "source": samples[0].source if samples else None}


def poll_task(settings: Settings, run_id: str) -> tuple[bool, dict[str, int]]:
    """Sensor body: classify what the marts already hold; done once nothing is pending."""
    with connect_warehouse(settings, autocommit=True) as conn:
        counts = classify(conn, run_id, final=False)
    return is_settled(counts), counts


def report_task(settings: Settings, run_id: str) -> dict[str, Any]:
    """Task body: close the run and fail on any mismatch or lost quote."""
    with connect_warehouse(settings, autocommit=True) as conn:
        return report(conn, run_id)
