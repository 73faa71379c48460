"""Historical quotes into the live path: one backfill run fetches its date range from
``quotes/historical`` and produces the quotes through the same contract and Kafka topic as the
live producer, so the loader's natural key makes a re-run (or an overlap with live quotes)
change nothing.

Credits: one ``quotes/latest`` call (1 credit per 100 coins) names the coins and gives what
history lacks (slug, max supply); then ``quotes/historical`` costs one credit per 100 data
points. Both are checked against the month's ledger before the call and charged after it, so
a backfill can never overrun the budget; the live producer's pace then slows down to absorb
what it spent.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from moonwatch.errors import SourceResponseError
from moonwatch.kafka import produce_quotes
from moonwatch.messages import InvalidMessage, QuoteMessage, build_quote_message
from moonwatch.pacing import HISTORY_JOB, credit_book, source_name, turn_of
from moonwatch.pipeline import charge_and_fetch_quotes
from moonwatch.settings import Settings
from moonwatch.sources.cmc import CoinMarketCapClient
from moonwatch.sources.credits import CallLog, LedgerStore, historical_credits

logger = logging.getLogger(__name__)

# The finest history each source has: the simulator's market has every minute (so offline
# history looks like the live feed); CoinMarketCap's finest interval is 5 minutes.
SIMULATOR_INTERVAL = "1m"
COINMARKETCAP_INTERVAL = "5m"
INTERVAL_MINUTES = {"1m": 1, "5m": 5, "10m": 10, "15m": 15, "30m": 30, "1h": 60}
MAX_POINTS_PER_COIN = 10_000  # CoinMarketCap's `count` limit per call
# Fields a history point lacks, taken from the coin's current quotes/latest object. Rank,
# dominance and percent changes are NOT copied: today's values would be wrong for the past.
_STATIC_FIELDS = ("name", "symbol", "slug", "max_supply", "infinite_supply", "num_market_pairs")


def default_interval(settings: Settings) -> str:
    return SIMULATOR_INTERVAL if settings.is_simulated else COINMARKETCAP_INTERVAL


def history_windows(
    start: datetime, end: datetime, interval: str, coins: int
) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut into inclusive windows of at most 10,000 points per coin, on the
    interval's minute boundaries. Raises ValueError for an unknown interval or an empty range."""
    if interval not in INTERVAL_MINUTES:
        raise ValueError(f"interval must be one of {', '.join(INTERVAL_MINUTES)}, not {interval!r}")
    if coins < 1:
        raise ValueError("no coins to fetch")
    step = timedelta(minutes=INTERVAL_MINUTES[interval])
    first = _ceil_to(start, step)
    last = _ceil_to(end, step) - step  # the last boundary before ``end``
    if first > last:
        raise ValueError(f"nothing to fetch between {start.isoformat()} and {end.isoformat()}")
    windows = []
    while first <= last:
        stop = min(last, first + step * (MAX_POINTS_PER_COIN - 1))
        windows.append((first, stop))
        first = stop + step
    return windows


def _ceil_to(moment: datetime, step: timedelta) -> datetime:
    """The first ``step`` boundary at or after ``moment``, as a plain UTC datetime (Airflow
    hands in pendulum datetimes, whose arithmetic differs)."""
    seconds = step.total_seconds()
    return datetime.fromtimestamp(math.ceil(moment.timestamp() / seconds) * seconds, UTC)


def fetch_history_messages(
    settings: Settings,
    start: datetime,
    end: datetime,
    symbols: str | None = None,
    *,
    interval: str | None = None,
    ledger_store: LedgerStore | None = None,
    call_log: CallLog | None = None,
    turn: datetime | None = None,
) -> tuple[list[QuoteMessage], int]:
    """The tracked coins' quotes in ``[start, end)`` as contract messages; also the credits.

    ``fetched_at`` is when the history was fetched, ``last_updated`` each point's time, so
    each message's natural key is the same as the live quote at that minute would have.
    """
    interval = interval or default_interval(settings)
    book = credit_book(settings, ledger_store, call_log)
    current = charge_and_fetch_quotes(settings, symbols, book=book, job=HISTORY_JOB, turn=turn)
    meta = {coin["id"]: coin for coin in current}
    windows = history_windows(start, end, interval, len(meta))
    step = INTERVAL_MINUTES[interval]
    messages: list[QuoteMessage] = []
    credits = 0
    with CoinMarketCapClient.from_settings(settings) as client:
        for first, last in windows:
            points = len(meta) * (int((last - first).total_seconds() // 60) // step + 1)
            book.ledger.ensure_available(historical_credits(points))
            result = client.quotes_historical(
                list(meta), first, last, interval, convert=settings.quote_currency
            )
            book.charge(HISTORY_JOB, result.credit_count, turn_of(turn))
            credits += result.credit_count
            fetched_at = datetime.now(UTC)
            messages += _messages(settings, result.points, meta, fetched_at)
    if not messages:
        raise SourceResponseError(
            f"CoinMarketCap returned no usable history between {start.isoformat()} and "
            f"{end.isoformat()}; nothing was produced. See the warnings above."
        )
    return messages, credits


def _messages(
    settings: Settings,
    points: list[dict[str, Any]],
    meta: dict[int, dict[str, Any]],
    fetched_at: datetime,
) -> list[QuoteMessage]:
    out: list[QuoteMessage] = []
    skipped: dict[str, int] = {}
    for point in points:
        coin = {**{k: meta[point["id"]].get(k) for k in _STATIC_FIELDS}, **_present(point)}
        try:
            out.append(
                build_quote_message(
                    coin, settings.quote_currency, source_name(settings), fetched_at
                )
            )
        except InvalidMessage as e:
            skipped[e.reason] = skipped.get(e.reason, 0) + 1
    for reason, count in skipped.items():
        logger.warning("skipped %d history point(s): %s", count, reason)
    return out


def _present(point: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in point.items() if v is not None}


def backfill_quotes(
    settings: Settings,
    start: datetime,
    end: datetime,
    symbols: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """One backfill run: fetch ``[start, end)`` and produce every point to Kafka, or fail.
    ``options`` are ``fetch_history_messages``'s (interval, ledger_store, call_log, turn)."""
    messages, credits = fetch_history_messages(settings, start, end, symbols, **options)
    delivered = produce_quotes(
        messages,
        settings.kafka_bootstrap,
        settings.topic,
        security=settings.kafka_security_config(),
    )
    return {
        "source": source_name(settings),
        "topic": settings.topic,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "interval": options.get("interval") or default_interval(settings),
        "delivered": delivered,
        "credits": credits,
        "coins": sorted({m.symbol for m in messages}),
    }
