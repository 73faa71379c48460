"""Frankfurter-shaped daily reference rates for the simulator: stable, moving slightly per day."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from moonwatch.sources.simulator.market import walk

# Units per 1 USD: round, plausible levels.
USD_RATES = {
    "USD": 1.0,
    "EUR": 0.92,
    "SEK": 10.6,
    "NOK": 10.7,
    "DKK": 6.87,
    "GBP": 0.79,
    "CHF": 0.90,
    "JPY": 155.0,
    "CAD": 1.37,
    "AUD": 1.52,
}
NOT_FOUND = (404, {"message": "not found"})


def reference_date(now: datetime) -> date:
    """The latest working day on or before ``now``: the ECB publishes no weekend rates."""
    day = now.date()
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def usd_rates(seed: int, day: date) -> dict[str, float]:
    """Units of each currency per USD on ``day``; a pure function of (seed, day)."""
    minute = day.toordinal() * 1440
    rates = {}
    for currency, level in USD_RATES.items():
        if currency == "USD":
            rates[currency] = 1.0
            continue
        drift = walk((seed, "fx", currency), minute, 0.004, 0.03)
        rates[currency] = level * (1.0 + drift)
    return rates


def frankfurter_latest(
    params: dict[str, str], seed: int, now: datetime, notice: str
) -> tuple[int, dict[str, Any]]:
    """``GET /latest?base=USD&symbols=EUR,SEK`` in Frankfurter's v1 shape."""
    day = reference_date(now)
    table = usd_rates(seed, day)
    base = params.get("base", params.get("from", "EUR")).upper()
    wanted = params.get("symbols", params.get("to", ""))
    symbols = [s.strip().upper() for s in wanted.split(",") if s.strip()] or sorted(table)
    if base not in table or any(s not in table for s in symbols):
        return NOT_FOUND
    amount = float(params.get("amount", "1") or 1)
    rates = {
        s: round(amount * table[s] / table[base], 5 if table[s] / table[base] < 100 else 3)
        for s in sorted(symbols)
        if s != base
    }
    return 200, {
        "amount": amount,
        "base": base,
        "date": day.isoformat(),
        "rates": rates,
        "notice": notice,
    }
