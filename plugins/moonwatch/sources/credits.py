"""CoinMarketCap credit budget: what a schedule costs, and a ledger that refuses to overspend.

CoinMarketCap charges one credit per 100 coins per call (rounded up) plus one per extra
``convert`` currency. A free plan has ~10,000 credits a month; one call a minute needs 43,200.
The ledger keeps each month's spend (UTC calendar months) in a pluggable store.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

from moonwatch.errors import CreditBudgetExceededError

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
    a Postgres table, tests with memory or a file."""

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


class JsonFileLedgerStore:
    """A JSON file ``{"2025-05": 1234, ...}``; an exclusive lock keeps concurrent tasks honest."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _locked(self, mode: int) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115
        fcntl.flock(handle, mode)
        handle.seek(0)
        return handle

    @staticmethod
    def _read(handle: IO[str]) -> dict[str, int]:
        text = handle.read()
        return json.loads(text) if text.strip() else {}

    def get(self, month: str) -> int:
        with self._locked(fcntl.LOCK_SH) as handle:
            return int(self._read(handle).get(month, 0))

    def add(self, month: str, credits: int) -> int:
        with self._locked(fcntl.LOCK_EX) as handle:
            spent = self._read(handle)
            spent[month] = int(spent.get(month, 0)) + credits
            handle.seek(0)
            handle.truncate()
            json.dump(spent, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
            return spent[month]


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
