"""Paid calls inside the month's budget: who may call now, what it cost, what is left.

Every paid call (quotes, listings, reconciliation, history) is charged to two places: the
credit ledger (``raw.cmc_credit_ledger``: real credits, enforced; the simulator is free) and
the call log (``raw.cmc_credit_calls``: every call with its ``status.credit_count``, the
simulator's too). A paced schedule's turn is counted from its last call in the log; the pace
itself is ``moonwatch.sources.credits.pace`` over the month's real spend.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from moonwatch.settings import Settings
from moonwatch.sources.credits import (
    CallLog,
    CreditLedger,
    InMemoryCallLog,
    LedgerStore,
    NotYourTurnError,
    Pace,
    Schedule,
    ensure_turn,
    month_key,
    pace,
)

logger = logging.getLogger(__name__)

QUOTES_JOB = "quotes"
LISTINGS_JOB = "listings"
# The volume listing rides on each listings run (its own line in the budget, no turn of its own).
VOLUME_LISTINGS_JOB = "listings_by_volume"
RECONCILE_JOB = "reconciliation"
HISTORY_JOB = "history"


def source_name(settings: Settings) -> str:
    """The ``source`` every row from this configuration carries."""
    return "simulator" if settings.is_simulated else "coinmarketcap"


@dataclass
class CreditBook:
    """The ledger and the call log of one configuration, charged together."""

    ledger: CreditLedger
    calls: CallLog
    source: str
    durable: bool  # backed by the warehouse (the DAGs) rather than memory (tests, scripts)

    def spent(self, now: datetime) -> int:
        """Credits spent this month: the real ledger (it may predate the call log), or for
        the simulator what its answers said each call would have cost."""
        logged = self.calls.spent(self.source, month_key(now))
        return logged if self.ledger.simulated else max(self.ledger.spent(), logged)

    def charge(self, job: str, credits: int, turn: datetime) -> None:
        """Record one call's cost; ``turn`` is the minute the call belongs to (a retry of the
        same run has the same turn, so it is never mistaken for the next one)."""
        self.ledger.record(credits)
        self.calls.record_call(job, self.source, turn, credits)


def credit_book(
    settings: Settings,
    ledger_store: LedgerStore | None = None,
    call_log: CallLog | None = None,
    *,
    now: datetime | None = None,
) -> CreditBook:
    """The warehouse-backed book, or in-memory parts where a test passes a store. The ledger
    counts the month of ``now`` (the run's minute), else of the wall clock."""
    durable = ledger_store is None
    if ledger_store is None:
        from moonwatch.warehouse.credits import PostgresLedgerStore

        ledger_store = PostgresLedgerStore(settings.require_warehouse_url())
    if call_log is None:
        if durable:
            from moonwatch.warehouse.credits import PostgresCallLog

            call_log = PostgresCallLog(settings.require_warehouse_url())
        else:
            call_log = InMemoryCallLog()
    ledger = CreditLedger(
        ledger_store,
        settings.monthly_credit_budget,
        simulated=settings.is_simulated,
        **({"clock": lambda: now} if now is not None else {}),
    )
    return CreditBook(ledger, call_log, source_name(settings), durable)


def turn_of(moment: datetime | None) -> datetime:
    """The minute a run's calls belong to: its logical date, else now (to the minute)."""
    return (moment or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)


def decide(
    settings: Settings, book: CreditBook, schedules: Sequence[Schedule], now: datetime
) -> Pace:
    """This minute's pace for ``schedules`` from the month's spend."""
    return pace(
        schedules,
        settings.monthly_credit_budget,
        book.spent(now),
        now,
        simulated=settings.is_simulated,
    )


def ensure_my_turn(
    settings: Settings,
    book: CreditBook,
    schedules: Sequence[Schedule],
    job: str,
    turn: datetime,
) -> Pace:
    """Raise ``NotYourTurnError`` unless ``job`` may call at ``turn``; return the pace.

    A second call in the same turn (an Airflow retry of the same run) may go ahead: only a
    later minute inside the cadence is refused.
    """
    decision = decide(settings, book, schedules, turn)
    schedule = next(s for s in schedules if s.name == job)
    last = book.calls.last_call(job, book.source)
    publish = book.durable and job == QUOTES_JOB
    try:
        ensure_turn(decision, schedule, last, turn)
    except NotYourTurnError:
        if publish:
            _save(settings, book, schedules, decision, turn, last)
        raise
    if publish:
        _save(settings, book, schedules, decision, turn, turn)
    logger.info("credit pacing: %s", decision.describe(schedule))
    return decision


def _save(
    settings: Settings,
    book: CreditBook,
    schedules: Sequence[Schedule],
    decision: Pace,
    turn: datetime,
    last: datetime | None,
) -> None:
    """Publish the decision for `make status` and the dashboard (best effort: pacing must
    not fail a producer run because a status row could not be written)."""
    import psycopg

    from moonwatch.warehouse.credits import save_pace

    by_name = {s.name: s for s in schedules}
    quotes, listings = by_name.get(QUOTES_JOB), by_name.get(LISTINGS_JOB)
    try:
        with psycopg.connect(settings.require_warehouse_url(), connect_timeout=10) as conn:
            save_pace(
                conn,
                book.source,
                turn,
                decision,
                decision.every_minutes(quotes) if quotes else None,
                decision.every_minutes(listings) if listings else None,
                last,
                decision.describe(quotes) if quotes else "",
            )
    except psycopg.Error as e:
        logger.warning("could not record the credit pace for make status: %s", e)
