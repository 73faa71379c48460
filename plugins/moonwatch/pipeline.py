"""The bodies of the DAGs' tasks, as plain functions of settings (easy to test without Airflow).

Each returns a small JSON-able summary (it becomes the task's XCom): counts, the source and
the coins, never a key or a URL with a password in it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import psycopg

from moonwatch.errors import SourceResponseError, WarehouseError
from moonwatch.ingest import consume_and_load
from moonwatch.kafka import produce_quotes
from moonwatch.messages import InvalidMessage, QuoteMessage, build_quote_message
from moonwatch.pacing import (
    HISTORY_JOB,
    LISTINGS_JOB,
    QUOTES_JOB,
    RECONCILE_JOB,
    VOLUME_LISTINGS_JOB,
    CreditBook,
    credit_book,
    ensure_my_turn,
    source_name,
    turn_of,
)
from moonwatch.settings import DASHBOARD_CURRENCIES, Settings, parse_symbols
from moonwatch.sources.cmc import CoinMarketCapClient
from moonwatch.sources.credits import (
    CallLog,
    LedgerStore,
    NotYourTurnError,
    Schedule,
    credits_per_call,
)
from moonwatch.sources.fx import fetch_usd_rates
from moonwatch.warehouse.fx_rates import load_fx_rates
from moonwatch.warehouse.listings import load_listings_snapshot

logger = logging.getLogger(__name__)

QUOTES_EVERY_MINUTES = 1
# One credit buys up to 100 coins: enough that a few refused coins still leave ten to rank.
VOLUME_LISTINGS_LIMIT = 100
RECONCILE_EVERY_MINUTES = 60  # dags/crypto_reconcile.py runs hourly
FX_CURRENCIES = (*DASHBOARD_CURRENCIES, "CHF", "JPY", "CAD", "AUD")


def credit_schedules(settings: Settings, coins: int) -> list[Schedule]:
    """What Moonwatch's schedules call CoinMarketCap for, to set against the monthly budget."""
    return [
        Schedule(QUOTES_JOB, QUOTES_EVERY_MINUTES, coins),
        Schedule(LISTINGS_JOB, settings.listings_every_minutes, settings.listings_limit),
        Schedule(VOLUME_LISTINGS_JOB, settings.listings_every_minutes, VOLUME_LISTINGS_LIMIT),
        Schedule(RECONCILE_JOB, RECONCILE_EVERY_MINUTES, coins),
    ]


def tracked_coin_count(settings: Settings, symbols: str | None = None) -> int:
    ids, tickers = parse_symbols(symbols or settings.symbols)
    return len(ids) + len(tickers)


def connect_warehouse(settings: Settings, *, autocommit: bool = False) -> psycopg.Connection:
    """A loader-role connection, or a ``WarehouseError`` that says what to check."""
    try:
        return psycopg.connect(
            settings.require_warehouse_url(), connect_timeout=10, autocommit=autocommit
        )
    except psycopg.OperationalError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WarehouseError(
            f"cannot connect to the warehouse ({first}); check PostgreSQL with `make status`"
        ) from None


def charge_and_fetch_quotes(
    settings: Settings,
    symbols: str | None = None,
    ledger_store: LedgerStore | None = None,
    *,
    call_log: CallLog | None = None,
    book: CreditBook | None = None,
    job: str = QUOTES_JOB,
    turn: datetime | None = None,
) -> list[dict[str, Any]]:
    """One ``quotes/latest`` call for the tracked coins when it is ``job``'s turn (else
    ``NotYourTurnError``: the month's credits are paced), checked against the credit ledger
    and charged to ``job`` at ``turn`` (the run's minute; now if not given). A history run is
    on request and only checked against the ledger."""
    ids, tickers = parse_symbols(symbols or settings.symbols)
    book = book or credit_book(settings, ledger_store, call_log, now=turn_of(turn))
    if job != HISTORY_JOB:
        schedules = credit_schedules(settings, len(ids) + len(tickers))
        ensure_my_turn(settings, book, schedules, job, turn_of(turn))
    calls = (1 if ids else 0) + (1 if tickers else 0)
    book.ledger.ensure_available(calls * credits_per_call(max(len(ids), len(tickers))))
    with CoinMarketCapClient.from_settings(settings) as client:
        result = client.quotes_latest(ids=ids, symbols=tickers, convert=settings.quote_currency)
    book.charge(job, result.credit_count, turn_of(turn))
    return result.coins


def fetch_quote_messages(
    settings: Settings,
    symbols: str | None = None,
    ledger_store: LedgerStore | None = None,
    *,
    call_log: CallLog | None = None,
    turn: datetime | None = None,
) -> list[QuoteMessage]:
    """Fetch the configured coins in one call and turn each into a contract message."""
    coins = charge_and_fetch_quotes(settings, symbols, ledger_store, call_log=call_log, turn=turn)
    # Stamped once the answer is in hand: a stamp taken before the call can precede the
    # source's own last_updated when the call crosses a minute boundary.
    fetched_at = datetime.now(UTC)
    messages: list[QuoteMessage] = []
    for coin in coins:
        try:
            messages.append(
                build_quote_message(
                    coin, settings.quote_currency, source_name(settings), fetched_at
                )
            )
        except InvalidMessage as e:
            logger.warning(
                "skipping coin %s (%s): %s", coin.get("id"), coin.get("symbol"), e.reason
            )
    if not messages:
        raise SourceResponseError(
            "CoinMarketCap returned no coin with a usable quote; nothing was produced. See the "
            "warnings above for each coin's reason."
        )
    return messages


def fetch_and_produce_quotes(
    settings: Settings,
    symbols: str | None = None,
    ledger_store: LedgerStore | None = None,
    *,
    call_log: CallLog | None = None,
    turn: datetime | None = None,
) -> dict[str, Any]:
    """One producer run: when it is its turn (``NotYourTurnError`` otherwise: the budget is
    paced), fetch, build messages, produce them all or fail."""
    messages = fetch_quote_messages(settings, symbols, ledger_store, call_log=call_log, turn=turn)
    delivered = produce_quotes(
        messages,
        settings.kafka_bootstrap,
        settings.topic,
        security=settings.kafka_security_config(),
    )
    return {
        "source": source_name(settings),
        "topic": settings.topic,
        "delivered": delivered,
        "coins": sorted(m.symbol for m in messages),
    }


def load_quotes(settings: Settings, loader: int = 0) -> dict[str, Any]:
    """One loader run: every quote waiting on its share of the topic's partitions into
    ``raw.crypto_quotes`` (bad ones into ``raw.crypto_quotes_rejected``), each batch committed
    in Postgres before its Kafka offsets (``moonwatch.ingest``). Several run at once in one
    consumer group (``settings.loaders``), ``loader`` 0..N-1, which sets when each leaves.
    Returns the counts and the partitions it held; ``inserted`` 0 means nothing new."""
    return consume_and_load(
        settings.kafka_bootstrap,
        settings.topic,
        settings.consumer_group,
        settings.require_warehouse_url(),
        consumer_overrides=settings.kafka_security_config(),
        loaders=settings.loaders,
        member=loader,
    )


def load_listings(
    settings: Settings,
    ledger_store: LedgerStore | None = None,
    *,
    call_log: CallLog | None = None,
    turn: datetime | None = None,
) -> dict[str, Any]:
    """One listings run straight to ``raw.crypto_listings``, inside the paced budget: the top
    ``listings_limit`` coins by market cap, and the market's top coins by 24h volume
    (CoinMarketCap's own ``sort=volume_24h``; ranking volume inside the market-cap top N
    would miss small coins that trade a lot). Both share one ``snapshot_at``."""
    book = credit_book(settings, ledger_store, call_log, now=turn_of(turn))
    schedules = credit_schedules(settings, tracked_coin_count(settings))
    ensure_my_turn(settings, book, schedules, LISTINGS_JOB, turn_of(turn))
    cost = credits_per_call(settings.listings_limit) + credits_per_call(VOLUME_LISTINGS_LIMIT)
    if not settings.is_simulated and book.ledger.remaining() < cost:
        # The month's last credits go to quotes: a listings run that cannot be paid for is
        # skipped like any paced turn, never a failed run.
        raise NotYourTurnError(
            f"listings need {cost} credits and {book.ledger.remaining()} are left this month; "
            "skipped so the last credits go to quotes. Listings resume on the 1st (UTC)."
        )
    book.ledger.ensure_available(cost)
    snapshot_at = datetime.now(UTC).replace(microsecond=0)
    with CoinMarketCapClient.from_settings(settings) as client:
        by_cap = client.listings_latest(
            limit=settings.listings_limit, convert=settings.quote_currency
        )
        book.charge(LISTINGS_JOB, by_cap.credit_count, turn_of(turn))
        by_volume = client.listings_latest(
            limit=VOLUME_LISTINGS_LIMIT, sort="volume_24h", convert=settings.quote_currency
        )
        book.charge(VOLUME_LISTINGS_JOB, by_volume.credit_count, turn_of(turn))
    inserted = 0
    with connect_warehouse(settings) as conn:
        for ranked_by, result in (("market_cap", by_cap), ("volume_24h", by_volume)):
            inserted += load_listings_snapshot(
                conn,
                result.coins,
                snapshot_at,
                settings.quote_currency,
                source_name(settings),
                ranked_by,
            )
    return {
        "snapshot_at": snapshot_at.isoformat(),
        "coins": len(by_cap.coins),
        "coins_by_volume": len(by_volume.coins),
        "inserted": inserted,
    }


def load_fx(settings: Settings) -> dict[str, Any]:
    """Today's reference rates (units per USD) to ``raw.fx_rates``."""
    rates = fetch_usd_rates(settings.fx_base_url, FX_CURRENCIES, settings.http_timeout_seconds)
    with connect_warehouse(settings) as conn:
        written = load_fx_rates(conn, rates)
    return {
        "as_of_date": rates.as_of_date.isoformat(),
        "currencies": written,
        "source": rates.source,
    }
