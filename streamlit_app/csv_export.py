"""The dashboard's CSV downloads: the figures of a table or chart, safe to open in a
spreadsheet.

No Streamlit and no database here, so every function tests without a running app.
"""

from __future__ import annotations

import pandas as pd

# What each download holds: the figures of a table or chart, money in the page's currency
# (``quote_currency`` after :func:`streamlit_app.currency.convert_rows`, written as ``currency``).
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
