"""The CoinMarketCap credit state in Postgres: the month's credits spent
(``raw.cmc_credit_ledger``), each paid call (``raw.cmc_credit_calls``) and the producer's newest
pacing decision (``raw.cmc_credit_pace``, read by ``make status`` and, through
``marts.credit_budget``, by the dashboard)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from moonwatch.sources.credits import Pace, cadence_text, month_end, month_key


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


class PostgresCallLog:
    """``CallLog`` over ``raw.cmc_credit_calls``: durable and shared by every worker."""

    def __init__(self, url: str) -> None:
        self._url = url

    def last_call(self, job: str, source: str) -> datetime | None:
        with psycopg.connect(self._url) as conn:
            row = conn.execute(
                "select max(called_at) from raw.cmc_credit_calls where source = %s and job = %s",
                (source, job),
            ).fetchone()
        return row[0] if row else None

    def record_call(self, job: str, source: str, at: datetime, credits: int) -> None:
        with psycopg.connect(self._url) as conn:
            # Calls of one job in the same turn (a retry of the run, or a history run's two
            # calls) are one row: every call costs, so their credits add up.
            conn.execute(
                "insert into raw.cmc_credit_calls (called_at, job, source, credits)"
                " values (%s, %s, %s, %s) on conflict (source, job, called_at) do update"
                " set credits = raw.cmc_credit_calls.credits + excluded.credits",
                (at, job, source, credits),
            )
            # The published pace counts this call at once (make status, the dashboard).
            conn.execute(
                "update raw.cmc_credit_pace set spent = spent + %s"
                " where source = %s and month = %s",
                (credits, source, month_key(at)),
            )

    def spent(self, source: str, month: str) -> int:
        start = datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=UTC)
        with psycopg.connect(self._url) as conn:
            row = conn.execute(
                "select coalesce(sum(credits), 0) from raw.cmc_credit_calls"
                " where source = %s and called_at >= %s and called_at < %s",
                (source, start, month_end(start)),
            ).fetchone()
        return int(row[0]) if row else 0


@dataclass(frozen=True)
class PaceRow:
    """One source's newest pacing decision, as ``raw.cmc_credit_pace`` holds it."""

    source: str
    decided_at: datetime
    month: str
    budget: int
    spent: int
    minutes_left: int
    quotes_every_minutes: int | None
    listings_every_minutes: int | None
    last_quotes_call_at: datetime | None
    summary: str


def save_pace(
    conn: psycopg.Connection,
    source: str,
    decided_at: datetime,
    decision: Pace,
    quotes_every: int | None,
    listings_every: int | None,
    last_quotes_call_at: datetime | None,
    summary: str,
) -> None:
    """Replace ``source``'s row in ``raw.cmc_credit_pace`` with this decision."""
    conn.execute(
        "insert into raw.cmc_credit_pace (source, decided_at, month, budget, spent, minutes_left,"
        " quotes_every_minutes, listings_every_minutes, last_quotes_call_at, summary)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict (source) do update set decided_at = excluded.decided_at,"
        " month = excluded.month, budget = excluded.budget, spent = excluded.spent,"
        " minutes_left = excluded.minutes_left,"
        " quotes_every_minutes = excluded.quotes_every_minutes,"
        " listings_every_minutes = excluded.listings_every_minutes,"
        " last_quotes_call_at = excluded.last_quotes_call_at, summary = excluded.summary",
        (
            source,
            decided_at,
            month_key(decided_at),
            decision.budget,
            decision.spent,
            decision.minutes_left,
            quotes_every,
            listings_every,
            last_quotes_call_at,
            summary,
        ),
    )


def read_pace(conn: psycopg.Connection, source: str) -> PaceRow | None:
    """``source``'s newest pacing decision, or None before the producer's first run."""
    row = conn.execute(
        "select source, decided_at, month, budget, spent, minutes_left, quotes_every_minutes,"
        " listings_every_minutes, last_quotes_call_at, summary"
        " from raw.cmc_credit_pace where source = %s",
        (source,),
    ).fetchone()
    return PaceRow(*row) if row else None


def describe_pace(row: PaceRow | None) -> str:
    """One line for `make status`: effective cadences, credits used and left this month."""
    if row is None:
        return "no producer run has recorded its pace yet"

    cadence = (
        f"quotes {cadence_text(row.quotes_every_minutes)}, "
        f"listings {cadence_text(row.listings_every_minutes)}"
    )
    if row.source == "simulator":
        money = f"simulator: free, {row.spent:,} credits counted in {row.month}"
    else:
        left = max(0, row.budget - row.spent)
        money = f"{row.spent:,} of {row.budget:,} credits used in {row.month}, {left:,} left"
    return f"{cadence}; {money} (as of {row.decided_at:%Y-%m-%d %H:%M} UTC)"
