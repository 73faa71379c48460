"""Pure helpers for the dashboard: currency conversion and number formatting.

No Streamlit and no database here, so every function tests without a running app.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
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
SIGNIFICANT_DIGITS = 4  # of a money amount below 1


@dataclass(frozen=True)
class FxChoice:
    """The currency the page shows money in, and the newest rate behind it (for the caption)."""

    requested: str
    currency: str  # what the page shows; ``home`` when no rate exists for ``requested``
    home: str  # the quote currency of the newest quotes (what the pipeline fetches now)
    rate: float | None = None  # units of ``currency`` per 1 ``home`` at the newest rates
    as_of: object | None = None  # the date of that newest ``currency`` rate
    problem: str | None = None  # why the page fell back to ``home``


def fx_history(rates: pd.DataFrame | None) -> pd.DataFrame:
    """``marts.fx_rates_daily`` rows as a clean table: ``currency`` (upper case),
    ``as_of_date`` (midnight, UTC-naive), ``rate_per_usd`` (> 0), sorted by date. Rows without
    a usable rate are dropped; USD needs no row (it is 1 by definition)."""
    columns = ["currency", "as_of_date", "rate_per_usd"]
    if rates is None or rates.empty:
        return pd.DataFrame(columns=columns).astype({"as_of_date": "datetime64[ns]"})
    out = pd.DataFrame(
        {
            "currency": rates["currency"].astype(str).str.upper(),
            "as_of_date": pd.to_datetime(rates["as_of_date"]).astype("datetime64[ns]"),
            "rate_per_usd": pd.to_numeric(rates["rate_per_usd"], errors="coerce"),
        }
    )
    out = out[out["rate_per_usd"] > 0].dropna()
    return out.sort_values(["as_of_date", "currency"], kind="stable").reset_index(drop=True)


def newest_fx_date(rates: pd.DataFrame) -> object | None:
    """The date of the newest rate (``max(as_of_date)``): how fresh the FX figures are."""
    if rates.empty:
        return None
    return rates["as_of_date"].max().date()


def _has_rate(rates: pd.DataFrame, currency: str) -> bool:
    return currency == "USD" or bool((rates["currency"] == currency).any())


def _latest_rate(rates: pd.DataFrame, currency: str) -> tuple[float, object | None]:
    if currency == "USD":
        return 1.0, None
    rows = rates[rates["currency"] == currency]
    return float(rows["rate_per_usd"].iloc[-1]), rows["as_of_date"].iloc[-1].date()


def resolve_fx(rates: pd.DataFrame, home: str, requested: str) -> FxChoice:
    """Which currency the page shows: ``requested`` when ``rates`` (:func:`fx_history`) can
    reach it, else ``home`` with the reason. USD is 1 per USD even when the mart lacks it."""
    if requested != home and not _has_rate(rates, requested):
        return FxChoice(
            requested,
            home,
            home,
            problem=f"No {requested} exchange rate in marts.fx_rates_daily yet; showing {home}.",
        )
    if requested == home or not _has_rate(rates, home):
        return FxChoice(requested, requested, home)
    rate, as_of = _latest_rate(rates, requested)
    return FxChoice(requested, requested, home, rate / _latest_rate(rates, home)[0], as_of)


def _days(moments: pd.Series) -> pd.Series:
    """The UTC calendar day of each moment (midnight, UTC-naive); NaT stays NaT."""
    stamps = pd.to_datetime(moments, utc=True)
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize().astype("datetime64[ns]")


def rates_on(rates: pd.DataFrame, currency: str, days: pd.Series) -> np.ndarray:
    """Units of ``currency`` per USD on each of ``days``: the rate of that date, else the last
    known one before it (weekends, holidays), else the earliest known (history older than the
    first rate the warehouse holds). NaN when the currency has no rate at all."""
    if currency == "USD":
        return np.ones(len(days))
    table = rates.loc[rates["currency"] == currency, ["as_of_date", "rate_per_usd"]]
    if table.empty:
        return np.full(len(days), np.nan)
    # A moment without a time converts at the newest rate; merge_asof needs sorted, non-null keys.
    probe = pd.DataFrame(
        {"day": days.fillna(table["as_of_date"].iloc[-1]).to_numpy(), "order": range(len(days))}
    ).sort_values("day", kind="stable")
    merged = pd.merge_asof(probe, table, left_on="day", right_on="as_of_date", direction="backward")
    merged["rate_per_usd"] = merged["rate_per_usd"].fillna(table["rate_per_usd"].iloc[0])
    return merged.sort_values("order")["rate_per_usd"].to_numpy(dtype=float)


def convert_rows(
    frame: pd.DataFrame, columns: tuple[str, ...], rates: pd.DataFrame, target: str, *, at: str
) -> pd.DataFrame:
    """A copy of ``frame`` with its money ``columns`` in ``target``.

    Each row converts from its own ``quote_currency`` at the rates of the day of its ``at``
    column (:func:`rates_on`), so history keeps each day's rate and rows of an older quote
    currency convert from that currency. A row already in ``target`` is never multiplied, and
    converted rows say ``target`` in ``quote_currency``, so converting twice changes nothing.
    A row whose currency has no rate keeps its currency label and loses its money (NaN: "—").
    """
    out = frame.copy()
    if out.empty:
        return out
    currencies = out["quote_currency"].astype(str).str.upper().to_numpy()
    days = _days(out[at]).reset_index(drop=True)
    factor = np.full(len(out), np.nan)
    target_rate = rates_on(rates, target, days)
    for currency in np.unique(currencies):
        mask = currencies == currency
        if currency == target:
            factor[mask] = 1.0
        else:
            factor[mask] = target_rate[mask] / rates_on(rates, currency, days[mask])
    for column in columns:
        if column in out.columns:
            out[column] = pd.to_numeric(out[column], errors="coerce").to_numpy() * factor
    out["quote_currency"] = np.where(np.isnan(factor), currencies, target)
    return out


def prefer_currency(frame: pd.DataFrame, keys: list[str], current: dict[int, str]) -> pd.DataFrame:
    """One row per ``keys`` where a coin has rows in two quote currencies for the same time
    (the hour the pipeline switched currency): the row of the coin's ``current`` currency wins.
    Call it before :func:`convert_rows` (it reads each row's own ``quote_currency``)."""
    if frame.empty:
        return frame
    rank = [
        0 if current.get(int(c)) == q else 1
        for c, q in zip(frame["coin_id"], frame["quote_currency"], strict=True)
    ]
    ordered = frame.assign(_rank=rank).sort_values([*keys, "_rank"], kind="stable")
    return ordered.drop_duplicates(keys).drop(columns="_rank").reset_index(drop=True)


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
    """Two decimals from 1 up; below 1, four significant digits in fixed notation, so a
    meme coin's price reads ``0.000001234`` and never ``1.234e-06``."""
    magnitude = abs(number)
    if magnitude == 0:
        return "0.00"
    if magnitude < 1:
        decimals = SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(magnitude))
        text = f"{magnitude:.{decimals}f}"
        if float(text) < 1:  # 0.99996 rounds to 1.0000: then it is a number from 1 up
            return text
    return f"{magnitude:,.2f}"


# Compact units, smallest first; a value that rounds to 1,000 of one unit moves to the next.
_UNITS = ((1e3, "K"), (1e6, "M"), (1e9, "B"), (1e12, "T"))


def _compact(number: float) -> str:
    """``1.21 T``, ``35.00 B``, ``999.00``; 999,999,999 is ``1.00 B``, never ``1,000.00 M``."""
    magnitude = abs(number)
    if round(magnitude, 2) < 1000:
        return _plain(number)
    for index, (threshold, suffix) in enumerate(_UNITS):
        scaled = round(magnitude / threshold, 2)
        if scaled < 1000 or index == len(_UNITS) - 1:
            return f"{scaled:,.2f} {suffix}"
    raise AssertionError("unreachable: the last unit always answers")


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


def is_stale(stamped_at: object, stale_after_seconds: float, now: datetime | None = None) -> bool:
    """Whether a coin's newest row is too old to pass for current. ``stamped_at`` is the time
    the pipeline itself stamped on that row (fetched or loaded), never the source's
    ``last_updated``; a coin without one is stale."""
    age = age_seconds(stamped_at, now)
    return age is None or age > stale_after_seconds


def badge_color(age: float | None) -> str:
    """The header badge's colour for the age of the newest pipeline-stamped time: green up to
    3 min (a load or two late), orange up to an hour, red after that or with no time."""
    if age is None or age > 3600:
        return "red"
    return "green" if age < 180 else "orange"


def active_source(sources: pd.DataFrame) -> str | None:
    """The source the page shows: the one whose newest pipeline-stamped time in
    ``marts.latest_quotes`` is the newest (``sources`` is :func:`queries.sources`)."""
    known = sources.dropna(subset=["stamped_at"])
    if known.empty:
        return None if sources.empty else str(sources["source"].iloc[0])
    return str(known.sort_values(["stamped_at", "source"]).iloc[-1]["source"])


def coin_labels(coins: pd.DataFrame) -> dict[int, str]:
    """A label per ``coin_id`` that tells the coins on the page apart.

    The ticker alone when no other coin shown has it; ``SYMBOL · Name`` when two coins share a
    ticker (CoinMarketCap has many); ``SYMBOL · Name #id`` when they share the name too. Plain
    text: escape it for the markup it goes into (``streamlit_app.markup``).
    """
    rows = coins.drop_duplicates("coin_id")
    ids = [int(c) for c in rows["coin_id"]]
    symbols = [str(s) for s in rows["symbol"]]
    names = [str(n) for n in rows["name"]]
    by_symbol = pd.Series(symbols).value_counts()
    by_pair = pd.Series(list(zip(symbols, names, strict=True))).value_counts()
    labels = {}
    for coin_id, symbol, name in zip(ids, symbols, names, strict=True):
        label = symbol
        if by_symbol[symbol] > 1:
            label = f"{symbol} · {name}"
            if by_pair[(symbol, name)] > 1:
                label += f" #{coin_id}"
        labels[coin_id] = label
    return labels


def last_hours(hourly: pd.DataFrame, hours: int = 24, now: datetime | None = None) -> pd.DataFrame:
    """The rows of ``hourly`` whose ``hour_at`` lies in the last ``hours`` hours, the current
    hour included: a day of closes, however many hours are missing from it."""
    if hourly.empty:
        return hourly
    current = pd.Timestamp(now or datetime.now(UTC)).floor("h")
    stamps = pd.to_datetime(hourly["hour_at"], utc=True)
    start = current - pd.Timedelta(hours=hours - 1)
    return hourly[(stamps >= start) & (stamps <= current)]


def days_old(day: object, now: datetime | None = None) -> int | None:
    """Whole days from ``day`` (a date) to today (UTC); None for no date."""
    if day is None or day is pd.NaT:
        return None
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return (today - pd.Timestamp(day).date()).days


# What each download holds: the figures of a table or chart, money in the page's currency
# (``quote_currency`` after :func:`convert_rows`, written as ``currency``).
CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "quotes": (
        "coin_id", "symbol", "name", "source", "cmc_rank", "price", "percent_change_1h",
        "percent_change_24h", "percent_change_7d", "percent_change_30d", "market_cap",
        "fully_diluted_market_cap", "volume_24h", "volume_change_24h", "market_cap_dominance",
        "circulating_supply", "total_supply", "max_supply", "last_updated_at", "stamped_at",
        "quote_currency",
    ),
    "hourly": (
        "coin_id", "symbol", "name", "source", "hour_at", "open_price", "high_price",
        "low_price", "close_price", "avg_price", "samples", "quote_currency",
    ),
    "history": (
        "coin_id", "last_updated_at", "price", "percent_change_1h", "percent_change_24h",
        "percent_change_7d", "percent_change_30d", "samples", "quote_currency",
    ),
    "top": (
        "rank", "coin_id", "symbol", "name", "source", "price", "market_cap", "volume_24h",
        "market_cap_dominance", "circulating_supply", "share_of_top_10", "snapshot_at",
        "quote_currency",
    ),
}  # fmt: skip
# A spreadsheet runs a cell that starts with one of these as a formula ("CSV injection"): a
# coin named "=HYPERLINK(...)" must open as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def table_csv(frame: pd.DataFrame, kind: str, labels: dict[int, str]) -> bytes:
    """The ``kind`` columns of ``frame`` (see CSV_COLUMNS) as UTF-8 CSV: a ``coin`` column
    with the page's label after ``coin_id``, ``currency`` for ``quote_currency``, times in
    ISO-8601 UTC, and text that a spreadsheet would run as a formula made inert."""
    columns = [c for c in CSV_COLUMNS[kind] if c in frame.columns]
    out = frame[columns].copy()
    if "coin_id" in out.columns:
        coin = [labels.get(int(c), "") for c in out["coin_id"]]
        out.insert(out.columns.get_loc("coin_id") + 1, "coin", coin)
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(_cell)
    return out.rename(columns={"quote_currency": "currency"}).to_csv(index=False).encode()
