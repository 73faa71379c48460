"""Turn CoinMarketCap's three quotes/latest shapes into one: the v1 coin object.

v1: ``data`` maps each requested symbol (or id) to ONE coin object.
v2: ``data`` maps each symbol to a LIST of coins (tickers are not unique); ids map to one object.
v3: ``data`` is a list of coins whose ``quote`` is a list of per-currency objects, each naming its
currency in ``symbol`` — e.g. ``{"id": 1, "symbol": "BTC", ..., "quote": [{"symbol": "USD",
"price": ..., "last_updated": ...}]}``. This is the shape CoinMarketCap's "Get latest crypto
prices" guide and public v3 clients use; a dict-shaped v3 ``quote`` is accepted as well.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

Coin = dict[str, Any]


def normalise_coin(raw: Any) -> Coin | None:
    """A v1-shaped copy of one coin object from any version, or None if it is not a coin."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), int):
        return None
    coin = dict(raw)
    quote = raw.get("quote")
    if isinstance(quote, list):
        # v3: [{"symbol": "USD", "price": ...}] -> {"USD": {"price": ...}}
        by_currency: dict[str, Any] = {}
        for entry in quote:
            if isinstance(entry, dict) and isinstance(entry.get("symbol"), str):
                fields = {k: v for k, v in entry.items() if k not in ("symbol", "id", "name")}
                by_currency[entry["symbol"].upper()] = fields
        coin["quote"] = by_currency
    elif isinstance(quote, dict):
        coin["quote"] = {str(k).upper(): dict(v) for k, v in quote.items() if isinstance(v, dict)}
    else:
        coin["quote"] = {}
    return coin


def _rank(coin: Coin) -> float:
    rank = coin.get("cmc_rank")
    # No float(): a 400-digit JSON integer would overflow it.
    return rank if isinstance(rank, int | float) and rank > 0 else float("inf")


def pick_coin(candidates: list[Coin], symbol: str, prefer_ids: set[int]) -> Coin | None:
    """Choose one coin among those sharing ``symbol``: a configured id, else the best-ranked
    active one. The choice is logged because a wrong pick silently tracks another coin."""
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    ids = [c["id"] for c in candidates]
    preferred = [c for c in candidates if c["id"] in prefer_ids]
    if preferred:
        chosen, why = preferred[0], "it is a configured id"
    else:
        active = [c for c in candidates if c.get("is_active", 1) == 1] or candidates
        chosen = min(active, key=_rank)
        why = f"it is the best-ranked active coin (cmc_rank {chosen.get('cmc_rank')})"
    logger.info(
        "ticker %s matches %d coins (ids %s); chose id %s (%s) because %s; set "
        "MOONWATCH_SYMBOLS to id:<n> to pin another",
        symbol,
        len(candidates),
        ids,
        chosen["id"],
        chosen.get("name"),
        why,
    )
    return chosen


def _as_list(value: Any) -> list[Coin]:
    raw = value if isinstance(value, list) else [value]
    return [c for c in (normalise_coin(r) for r in raw) if c is not None]


def coins_by_id(data: Any, ids: Iterable[int]) -> tuple[list[Coin], list[str]]:
    """Coins for requested ids from any version's ``data``; also the labels of missing ids."""
    pool: dict[int, Coin] = {}
    values = (
        data if isinstance(data, list) else list(data.values()) if isinstance(data, dict) else []
    )
    for value in values:
        for coin in _as_list(value):
            pool.setdefault(coin["id"], coin)
    found, missing = [], []
    for coin_id in ids:
        if coin_id in pool:
            found.append(pool[coin_id])
        else:
            missing.append(f"id:{coin_id}")
    return found, missing


def coins_by_symbol(
    data: Any, symbols: Iterable[str], prefer_ids: set[int]
) -> tuple[list[Coin], list[str]]:
    """Coins for requested tickers from any version's ``data``, one per ticker."""
    groups: dict[str, list[Coin]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            groups.setdefault(str(key).upper(), []).extend(_as_list(value))
    elif isinstance(data, list):
        for coin in _as_list(data):
            groups.setdefault(str(coin.get("symbol", "")).upper(), []).append(coin)
    found, missing = [], []
    for symbol in symbols:
        chosen = pick_coin(groups.get(symbol.upper(), []), symbol.upper(), prefer_ids)
        if chosen is None:
            missing.append(symbol.upper())
        else:
            found.append(chosen)
    return found, missing
