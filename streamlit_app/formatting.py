"""Numbers and names as the dashboard shows them: money, amounts, percents, coin labels and
data sources.

No Streamlit and no database here, so every function tests without a running app.
"""

from __future__ import annotations

import math

import pandas as pd

# How the page names a data source (the marts' `source` column) in its text.
SOURCE_NAMES = {"simulator": "simulated", "coinmarketcap": "CoinMarketCap"}
_PREFIX = {"USD": "$", "EUR": "€", "GBP": "£"}
SIGNIFICANT_DIGITS = 4  # of a money amount below 1


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
