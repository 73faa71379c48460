"""Pure helpers for the dashboard: currency conversion and number formatting.

No Streamlit and no database here, so every function tests without a running app.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

# Money columns per mart: multiplied by the FX factor. Percent columns are never converted.
QUOTE_MONEY_COLUMNS = (
    "price",
    "volume_24h",
    "market_cap",
    "fully_diluted_market_cap",
)
HOURLY_MONEY_COLUMNS = ("open_price", "high_price", "low_price", "close_price", "avg_price")
TOP10_MONEY_COLUMNS = ("price", "market_cap", "volume_24h")

_PREFIX = {"USD": "$", "EUR": "€", "GBP": "£"}


@dataclass(frozen=True)
class FxChoice:
    """The conversion the page applies: multiply money in ``base`` by ``factor``."""

    requested: str
    currency: str  # what the page shows; ``base`` when no rate exists for ``requested``
    factor: float
    as_of: object | None = None  # the rate's date, for the caption
    problem: str | None = None  # why the page fell back to ``base``


def resolve_fx(rates: pd.DataFrame, base: str, requested: str) -> FxChoice:
    """Pick the factor that turns ``base`` money into ``requested`` money.

    ``rates`` has ``currency`` and ``rate_per_usd`` (units of currency per 1 USD), as in
    ``marts.fx_rates_daily``. USD is 1 by definition even when the mart lacks its row.
    Without a rate for ``requested`` (or for ``base``) the page stays in ``base`` and says why.
    """
    table: dict[str, tuple[float, object]] = {"USD": (1.0, None)}
    if rates is not None and not rates.empty:
        for row in rates.itertuples(index=False):
            rate = _as_float(row.rate_per_usd)
            if rate is not None and rate > 0:
                table[str(row.currency).upper()] = (rate, getattr(row, "as_of_date", None))
    if requested == base:
        return FxChoice(requested, base, 1.0, table.get(base, (None, None))[1])
    if requested not in table:
        return FxChoice(
            requested,
            base,
            1.0,
            problem=f"No {requested} exchange rate in marts.fx_rates_daily yet; showing {base}.",
        )
    if base not in table:
        return FxChoice(
            requested,
            base,
            1.0,
            problem=f"No {base} exchange rate in marts.fx_rates_daily to convert from; "
            f"showing {base}.",
        )
    rate, as_of = table[requested]
    return FxChoice(requested, requested, rate / table[base][0], as_of)


def convert(frame: pd.DataFrame, columns: tuple[str, ...], factor: float) -> pd.DataFrame:
    """A copy of ``frame`` with the money ``columns`` (those present) multiplied by ``factor``."""
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            out[column] = pd.to_numeric(out[column], errors="coerce") * factor
    return out


def _as_float(value: object) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def format_money(value: object, currency: str, *, compact: bool = False) -> str:
    """``$61,234.12``, ``€0.5123``, ``612,345.67 SEK``; ``compact`` gives ``$1.21 T``."""
    number = _as_float(value)
    if number is None:
        return "—"
    text = _compact(number) if compact else _plain(number)
    prefix = _PREFIX.get(currency)
    sign = "-" if number < 0 else ""
    if prefix:
        return f"{sign}{prefix}{text}"
    return f"{sign}{text} {currency}"


def format_signed_money(value: object, currency: str) -> str:
    """A change in money with an explicit sign: ``+$312.40``, ``-€1.20``."""
    number = _as_float(value)
    if number is None:
        return "—"
    text = format_money(abs(number), currency)
    return ("-" if number < 0 else "+") + text


def _plain(number: float) -> str:
    magnitude = abs(number)
    if magnitude >= 1 or magnitude == 0:
        return f"{magnitude:,.2f}"
    if magnitude >= 0.01:
        return f"{magnitude:,.4f}"
    return f"{magnitude:.4g}"


def _compact(number: float) -> str:
    magnitude = abs(number)
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if magnitude >= threshold:
            return f"{magnitude / threshold:,.2f} {suffix}"
    return _plain(number)


def format_amount(value: object, unit: str = "") -> str:
    """A compact quantity such as a supply: ``19.79 M BTC``."""
    number = _as_float(value)
    if number is None:
        return "—"
    text = ("-" if number < 0 else "") + _compact(number)
    return f"{text} {unit}".strip()


def format_percent(value: object, *, signed: bool = True) -> str:
    number = _as_float(value)
    if number is None:
        return "—"
    return f"{number:+.2f}%" if signed else f"{number:.2f}%"


def change_in_money(price: object, percent: object) -> float | None:
    """The money change behind a percent change: ``price - price / (1 + percent/100)``."""
    p, pct = _as_float(price), _as_float(percent)
    if p is None or pct is None or pct <= -100:
        return None
    return p - p / (1 + pct / 100)


def format_age(moment: object, now: datetime | None = None) -> str:
    """``40 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago``; ``never`` for no time."""
    if moment is None or (isinstance(moment, float) and math.isnan(moment)) or moment is pd.NaT:
        return "never"
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    now = now or datetime.now(UTC)
    seconds = max(0, int((pd.Timestamp(now) - stamp).total_seconds()))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min ago"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} d ago"


def age_seconds(moment: object, now: datetime | None = None) -> float | None:
    if moment is None or moment is pd.NaT:
        return None
    stamp = pd.Timestamp(moment)
    if pd.isna(stamp):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return (pd.Timestamp(now or datetime.now(UTC)) - stamp).total_seconds()
