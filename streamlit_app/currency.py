"""Currency conversion for the dashboard: each money figure converts from its own row's quote
currency at its own day's rate from ``marts.fx_rates_daily``.

No Streamlit and no database here, so every function tests without a running app.
"""

from __future__ import annotations

from dataclasses import dataclass

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
