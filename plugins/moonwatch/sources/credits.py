"""CoinMarketCap credit budget: what a schedule costs, and a ledger that refuses to overspend.

CoinMarketCap charges one credit per 100 coins per call (rounded up) plus one per extra
``convert`` currency. A free plan has ~10,000 credits a month; one call a minute needs 43,200.
The ledger keeps each month's spend (UTC calendar months) in a pluggable store.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from moonwatch.errors import CreditBudgetExceededError, MoonwatchError

logger = logging.getLogger(__name__)

COINS_PER_CREDIT = 100
MINUTES_PER_DAY = 24 * 60
DAYS_PER_MONTH = 30


def credits_per_call(
    coins: int, converts: int = 1, coins_per_credit: int = COINS_PER_CREDIT
) -> int:
    """Credits one call costs: ceil(coins / 100), at least 1, plus 1 per extra currency."""
    if coins < 0 or converts < 1:
        raise ValueError("coins must be >= 0 and converts >= 1")
    return max(1, math.ceil(coins / coins_per_credit)) + (converts - 1)


def monthly_credits(calls_per_day: float, credits_each: int, days: int = DAYS_PER_MONTH) -> int:
    """Credits a schedule spends in a month of ``days`` days."""
    return math.ceil(calls_per_day * days * credits_each)


@dataclass(frozen=True)
class Schedule:
    """One recurring call: every ``every_minutes`` minutes for ``coins`` coins."""

    name: str
    every_minutes: float
    coins: int
    converts: int = 1
    calls_per_run: int = 1

    @property
    def calls_per_day(self) -> float:
        return MINUTES_PER_DAY / self.every_minutes * self.calls_per_run

    @property
    def monthly_credits(self) -> int:
        each = credits_per_call(self.coins, self.converts)
        return monthly_credits(self.calls_per_day, each)


@dataclass(frozen=True)
class BudgetCheck:
    """The outcome of ``check_schedule``: ``ok`` and a sentence for the log or the UI."""

    ok: bool
    monthly_credits: int
    budget: int
    message: str


def check_schedule(schedules: Schedule | Sequence[Schedule], budget: int) -> BudgetCheck:
    """Compare what the schedules spend a month with ``budget``; warn when they overrun it."""
    items = [schedules] if isinstance(schedules, Schedule) else list(schedules)
    total = sum(s.monthly_credits for s in items)
    parts = ", ".join(f"{s.name} {s.monthly_credits:,}" for s in items)
    if total <= budget:
        message = (
            f"schedule spends ~{total:,} CoinMarketCap credits a month of {budget:,} ({parts})"
        )
        logger.info(message)
        return BudgetCheck(True, total, budget, message)
    factor = total / budget if budget else math.inf
    message = (
        f"schedule needs ~{total:,} CoinMarketCap credits a month but the budget is {budget:,} "
        f"({parts}); it would run dry after ~{DAYS_PER_MONTH / factor:.1f} days. Poll at least "
        f"{factor:.2f}x less often, track fewer coins, raise MOONWATCH_CMC_MONTHLY_CREDITS to "
        "your plan's allowance, or run without CMC_API_KEY on the simulator."
    )
    logger.warning(message)
    return BudgetCheck(False, total, budget, message)


class LedgerStore(Protocol):
    """Where spent credits live, per month key ``YYYY-MM``; the DAGs back it with a Variable or
    a Postgres table, tests with memory."""

    def get(self, month: str) -> int: ...

    def add(self, month: str, credits: int) -> int:
        """Add ``credits`` to ``month`` and return the new total."""
        ...


class InMemoryLedgerStore:
    """A process-local store (tests, one-off scripts)."""

    def __init__(self) -> None:
        self._spent: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, month: str) -> int:
        with self._lock:
            return self._spent.get(month, 0)

    def add(self, month: str, credits: int) -> int:
        with self._lock:
            self._spent[month] = self._spent.get(month, 0) + credits
            return self._spent[month]


def month_key(moment: datetime) -> str:
    """The UTC calendar month of ``moment``: ``"2025-05"``."""
    return moment.astimezone(UTC).strftime("%Y-%m")


class CreditLedger:
    """Records each call's ``status.credit_count`` and refuses calls once the month is spent.

    In simulated mode (no API key) nothing is charged or refused: the simulator is free.
    """

    def __init__(
        self,
        store: LedgerStore,
        monthly_budget: int,
        *,
        simulated: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.monthly_budget = monthly_budget
        self.simulated = simulated
        self._clock = clock

    def _month(self) -> str:
        return month_key(self._clock())

    def spent(self) -> int:
        return self.store.get(self._month())

    def remaining(self) -> int:
        return max(0, self.monthly_budget - self.spent())

    def ensure_available(self, credits: int = 1) -> None:
        """Raise ``CreditBudgetExceededError`` if ``credits`` more would overrun this month."""
        if self.simulated:
            logger.info("simulated source (no CMC_API_KEY): the credit budget is not enforced")
            return
        month = self._month()
        spent = self.store.get(month)
        if spent + credits > self.monthly_budget:
            raise CreditBudgetExceededError(
                f"CoinMarketCap credit budget for {month} is spent: {spent:,} of "
                f"{self.monthly_budget:,} used and this call needs {credits}. Calls resume on "
                "the 1st (UTC). Raise MOONWATCH_CMC_MONTHLY_CREDITS only if your plan allows it, "
                "or poll less often."
            )

    def record(self, credit_count: int) -> int:
        """Add one call's ``status.credit_count``; returns the month's total (0 if simulated)."""
        if self.simulated:
            logger.debug("simulated source: %d credit(s) not recorded", credit_count)
            return 0
        if credit_count < 0:
            raise ValueError("credit_count must be >= 0")
        total = self.store.add(self._month(), credit_count)
        if total >= 0.8 * self.monthly_budget:
            logger.warning(
                "CoinMarketCap credits this month: %d of %d (%.0f%%)",
                total,
                self.monthly_budget,
                100 * total / max(1, self.monthly_budget),
            )
        return total


# -- pacing: spread the month's credits so they last until the 1st ---------------------------


def historical_credits(points: int, converts: int = 1) -> int:
    """Credits a ``quotes/historical`` call costs: CoinMarketCap charges one per 100 data points
    returned (rounded up, at least one) plus one per extra ``convert`` currency, the same
    arithmetic as a coin count."""
    return credits_per_call(points, converts)


def month_end(moment: datetime) -> datetime:
    """The first instant of the next UTC calendar month (when the plan's credits reset)."""
    moment = moment.astimezone(UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def minutes_left_in_month(moment: datetime) -> int:
    """Whole minutes from ``moment``'s minute to the month's end, the current minute included."""
    start = moment.astimezone(UTC).replace(second=0, microsecond=0)
    return int((month_end(moment) - start).total_seconds() // 60)


@dataclass(frozen=True)
class Pace:
    """How much slower than their own schedules the paid calls must run to last the month.

    ``stretch`` is a whole number: every schedule runs on every ``stretch``-th of its own
    turns (quotes every ``stretch`` minutes, listings every ``15 * stretch``), so what is
    left is shared evenly in time and in proportion to what each schedule would spend.
    ``stretch`` is None when not even one more call fits before the month ends.
    """

    stretch: int | None
    budget: int
    spent: int
    minutes_left: int
    needed: int
    simulated: bool = False

    @property
    def remaining(self) -> int:
        return max(0, self.budget - self.spent)

    def every_minutes(self, schedule: Schedule) -> int | None:
        """The effective cadence of ``schedule`` in minutes (None: no call until the 1st)."""
        if self.stretch is None:
            return None
        return max(1, math.ceil(schedule.every_minutes)) * self.stretch

    def describe(self, schedule: Schedule) -> str:
        """One line for logs, ``make status`` and the dashboard."""
        cadence = cadence_text(self.every_minutes(schedule))
        if self.simulated:
            return (
                f"{schedule.name} {cadence}; simulator: free, {self.spent:,} credits counted "
                f"this month against a budget of {self.budget:,}"
            )
        return (
            f"{schedule.name} {cadence}; {self.spent:,} of {self.budget:,} credits used this "
            f"month, {self.remaining:,} left for {self.minutes_left:,} minutes"
        )


def cadence_text(minutes: int | None) -> str:
    """``every minute``, ``every 6 minutes``, or (None) ``paused until the 1st (UTC)``."""
    if minutes is None:
        return "paused until the 1st (UTC)"
    return "every minute" if minutes == 1 else f"every {minutes} minutes"


def pace(
    schedules: Sequence[Schedule],
    budget: int,
    spent: int,
    now: datetime,
    *,
    simulated: bool = False,
) -> Pace:
    """The pace that makes ``budget - spent`` credits last until the month ends.

    What the schedules would spend at full speed in the minutes left (``needed``) is set
    against what is left; the stretch is the smallest whole factor that fits. Every schedule
    runs ``stretch`` times less often, so the spend is at most ``needed / stretch <= left``.
    It is recomputed on every turn from the real ledger, so an extra call (a retry, a
    reconciliation, a backfill) slows the rest of the month down instead of running it dry.
    The simulator is free: simulated pacing always runs at full speed.
    """
    minutes = minutes_left_in_month(now)
    needed = math.ceil(
        sum(
            credits_per_call(s.coins, s.converts) * s.calls_per_run * minutes / s.every_minutes
            for s in schedules
        )
    )
    remaining = max(0, budget - spent)
    cheapest = min((credits_per_call(s.coins, s.converts) for s in schedules), default=1)
    if simulated or needed <= remaining:
        stretch: int | None = 1
    elif remaining < cheapest:
        stretch = None
    else:
        stretch = math.ceil(needed / remaining)
    return Pace(stretch, budget, spent, minutes, needed, simulated)


class CallLog(Protocol):
    """When each schedule last called the API: its turn comes ``every_minutes`` after that."""

    def last_call(self, job: str, source: str) -> datetime | None: ...

    def record_call(self, job: str, source: str, at: datetime, credits: int) -> None: ...

    def spent(self, source: str, month: str) -> int:
        """Credits the calls of ``source`` cost in ``month`` (``YYYY-MM``)."""
        ...


class InMemoryCallLog:
    """A process-local call log (tests, one-off scripts)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, datetime, int]] = []
        self._last: dict[tuple[str, str], datetime] = {}
        self._spent: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def last_call(self, job: str, source: str) -> datetime | None:
        with self._lock:
            return self._last.get((job, source))

    def record_call(self, job: str, source: str, at: datetime, credits: int) -> None:
        with self._lock:
            self.calls.append((job, source, at, credits))
            self._last[job, source] = max(at, self._last.get((job, source), at))
            month = (source, month_key(at))
            self._spent[month] = self._spent.get(month, 0) + credits

    def spent(self, source: str, month: str) -> int:
        with self._lock:
            return self._spent.get((source, month), 0)


def minutes_since(earlier: datetime | None, now: datetime) -> int | None:
    """Whole clock minutes between two moments (12:04:59 to 12:05:01 is one): a task that
    starts a few seconds late on its minute still finds its turn."""
    if earlier is None:
        return None
    return int(now.timestamp() // 60) - int(earlier.timestamp() // 60)


class NotYourTurnError(MoonwatchError):
    """The paced schedule's turn has not come: the run is skipped, which is not a failure."""


def ensure_turn(pace_now: Pace, schedule: Schedule, last: datetime | None, now: datetime) -> None:
    """Raise ``NotYourTurnError`` with the reason unless ``schedule`` may call now."""
    every = pace_now.every_minutes(schedule)
    if every is None:
        raise NotYourTurnError(
            f"{pace_now.describe(schedule)}: not even one more call fits this month's "
            f"MOONWATCH_CMC_MONTHLY_CREDITS ({pace_now.budget:,}); calls resume on "
            f"{month_end(now):%Y-%m-%d} (UTC)."
        )
    since = minutes_since(last, now)
    # 0: the same turn again (an Airflow retry of the same run), which may call.
    if since is not None and 0 < since < every:
        raise NotYourTurnError(
            f"{pace_now.describe(schedule)}: last call {since} minute(s) ago, next in "
            f"{every - since}. Paced to make the month's credits last; raise "
            "MOONWATCH_CMC_MONTHLY_CREDITS only if the plan allows it."
        )
