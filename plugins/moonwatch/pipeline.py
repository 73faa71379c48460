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
from moonwatch.kafka import produce_quotes
from moonwatch.messages import InvalidMessage, QuoteMessage, build_quote_message
from moonwatch.settings import DASHBOARD_CURRENCIES, Settings, parse_symbols
from moonwatch.sources.cmc import CoinMarketCapClient
from moonwatch.sources.credits import (
    CreditLedger,
    LedgerStore,
    Schedule,
    check_schedule,
    credits_per_call,
)
from moonwatch.sources.fx import fetch_usd_rates
from moonwatch.warehouse.snapshots import (
    PostgresLedgerStore,
    load_fx_rates,
    load_listings_snapshot,
)

logger = logging.getLogger(__name__)

QUOTES_EVERY_MINUTES = 1
RECONCILE_EVERY_MINUTES = 60  # dags/crypto_reconcile.py runs hourly
FX_CURRENCIES = (*DASHBOARD_CURRENCIES, "CHF", "JPY", "CAD", "AUD")


def source_name(settings: Settings) -> str:
    """The ``source`` every row from this configuration carries."""
    return "simulator" if settings.is_simulated else "coinmarketcap"


def credit_schedules(settings: Settings, coins: int) -> list[Schedule]:
    """What Moonwatch's schedules call CoinMarketCap for, to set against the monthly budget."""
    return [
        Schedule("quotes", QUOTES_EVERY_MINUTES, coins),
        Schedule("listings", settings.listings_every_minutes, settings.listings_limit),
        Schedule("reconciliation", RECONCILE_EVERY_MINUTES, coins),
    ]


def _ledger(settings: Settings, store: LedgerStore | None) -> CreditLedger:
    if store is None:
        store = PostgresLedgerStore(settings.require_warehouse_url())
    return CreditLedger(store, settings.monthly_credit_budget, simulated=settings.is_simulated)


def _connect(settings: Settings) -> psycopg.Connection:
    try:
        return psycopg.connect(settings.require_warehouse_url(), connect_timeout=10)
    except psycopg.OperationalError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WarehouseError(
            f"cannot connect to the warehouse ({first}); check PostgreSQL with `make status`"
        ) from None


def charge_and_fetch_quotes(
    settings: Settings,
    symbols: str | None = None,
    ledger_store: LedgerStore | None = None,
) -> list[dict[str, Any]]:
    """One ``quotes/latest`` call for the tracked coins, checked against the credit ledger."""
    ids, tickers = parse_symbols(symbols or settings.symbols)
    budget = check_schedule(
        credit_schedules(settings, len(ids) + len(tickers)), settings.monthly_credit_budget
    )
    if not budget.ok and not settings.is_simulated:
        logger.warning("credit budget: %s", budget.message)
    ledger = _ledger(settings, ledger_store)
    calls = (1 if ids else 0) + (1 if tickers else 0)
    ledger.ensure_available(calls * credits_per_call(max(len(ids), len(tickers))))
    with CoinMarketCapClient.from_settings(settings) as client:
        result = client.quotes_latest(ids=ids, symbols=tickers, convert=settings.quote_currency)
    ledger.record(result.credit_count)
    return result.coins


def fetch_quote_messages(
    settings: Settings,
    symbols: str | None = None,
    ledger_store: LedgerStore | None = None,
) -> list[QuoteMessage]:
    """Fetch the configured coins in one call and turn each into a contract message."""
    coins = charge_and_fetch_quotes(settings, symbols, ledger_store)
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
    settings: Settings, symbols: str | None = None, ledger_store: LedgerStore | None = None
) -> dict[str, Any]:
    """One producer run: fetch, build messages, produce them all or fail."""
    messages = fetch_quote_messages(settings, symbols, ledger_store)
    delivered = produce_quotes(messages, settings.kafka_bootstrap, settings.topic)
    return {
        "source": source_name(settings),
        "topic": settings.topic,
        "delivered": delivered,
        "coins": sorted(m.symbol for m in messages),
    }


def load_listings(settings: Settings, ledger_store: LedgerStore | None = None) -> dict[str, Any]:
    """One listings snapshot straight to ``raw.crypto_listings``."""
    ledger = _ledger(settings, ledger_store)
    ledger.ensure_available(credits_per_call(settings.listings_limit))
    snapshot_at = datetime.now(UTC).replace(microsecond=0)
    with CoinMarketCapClient.from_settings(settings) as client:
        result = client.listings_latest(
            limit=settings.listings_limit, convert=settings.quote_currency
        )
    ledger.record(result.credit_count)
    with _connect(settings) as conn:
        inserted = load_listings_snapshot(
            conn, result.coins, snapshot_at, settings.quote_currency, source_name(settings)
        )
    return {
        "snapshot_at": snapshot_at.isoformat(),
        "coins": len(result.coins),
        "inserted": inserted,
    }


def load_fx(settings: Settings) -> dict[str, Any]:
    """Today's reference rates (units per USD) to ``raw.fx_rates``."""
    rates = fetch_usd_rates(settings.fx_base_url, FX_CURRENCIES, settings.http_timeout_seconds)
    with _connect(settings) as conn:
        written = load_fx_rates(conn, rates)
    return {
        "as_of_date": rates.as_of_date.isoformat(),
        "currencies": written,
        "source": rates.source,
    }
