"""CoinMarketCap's endpoints as the simulator answers them: shapes, parameters, credits, errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from moonwatch.sources.credits import credits_per_call
from moonwatch.sources.simulator.fx_rates import USD_RATES, reference_date, usd_rates
from moonwatch.sources.simulator.market import Market

NOTICE = "Moonwatch offline simulator: simulated data"
# error_code -> (HTTP status, CoinMarketCap's wording)
ERRORS: dict[int, tuple[int, str]] = {
    400: (400, "Invalid value"),
    1001: (401, "This API Key is invalid."),
    1002: (401, "API key missing."),
    1003: (402, "Your API Key must be activated. Please go to pro.coinmarketcap.com/account/plan."),
    1004: (402, "Your API Key's subscription plan has expired."),
    1005: (403, "An API Key is required for this call."),
    1006: (403, "Your API Key subscription plan doesn't support this endpoint."),
    1007: (403, "This API Key has been disabled. Please contact support."),
    1008: (
        429,
        "You've exceeded your API Key's HTTP request rate limit. Rate limits reset every minute.",
    ),
    1009: (429, "You've exceeded your API Key's daily rate limit."),
    1010: (429, "You've exceeded your API Key's monthly rate limit."),
    1011: (429, "You've hit an IP rate limit."),
    500: (500, "An internal server error occurred."),
}
_MONEY = ("price", "volume_24h", "market_cap", "fully_diluted_market_cap")
_QUOTE_SORTS = {
    "market_cap", "market_cap_strict", "price", "volume_24h", "percent_change_1h",
    "percent_change_24h", "percent_change_7d", "fully_diluted_market_cap",
}  # fmt: skip
_COIN_SORTS = {"name", "symbol", "date_added", "num_market_pairs", "circulating_supply",
               "total_supply", "max_supply"}  # fmt: skip

Reply = tuple[int, dict[str, Any]]


class BadRequest(Exception):
    """A parameter CoinMarketCap would refuse with HTTP 400 / error_code 400."""


def status(now: datetime, error_code: int = 0, message: str | None = None, credits: int = 0,
           **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "error_code": error_code,
        "error_message": message,
        "elapsed": 1,
        "credit_count": credits,
        "notice": NOTICE,
        **extra,
    }


def error_reply(
    now: datetime, code: int, message: str | None = None, http: int | None = None
) -> Reply:
    default_http, default_message = ERRORS.get(code, (http or 400, "Error"))
    return http or default_http, {"status": status(now, code, message or default_message)}


def _converts(params: dict[str, str]) -> list[str]:
    currencies = [c.strip().upper() for c in params.get("convert", "USD").split(",") if c.strip()]
    for currency in currencies or ["USD"]:
        if currency not in USD_RATES:
            raise BadRequest(f'Invalid value for "convert": "{currency}"')
    return currencies or ["USD"]


def _priced(coin: dict[str, Any], converts: list[str], rates: dict[str, float]) -> dict[str, Any]:
    usd = coin["quote"]["USD"]
    quote = {}
    for currency in converts:
        rate = rates[currency]
        quote[currency] = {
            k: (v * rate if k in _MONEY and v is not None else v) for k, v in usd.items()
        }
    return {**coin, "quote": quote}


def _v3(coin: dict[str, Any]) -> dict[str, Any]:
    return {**coin, "quote": [{"symbol": cur, **q} for cur, q in coin["quote"].items()]}


def quotes_latest(version: int, params: dict[str, str], market: Market, now: datetime) -> Reply:
    given = [k for k in ("id", "symbol", "slug") if params.get(k)]
    if version == 3 and not given and params.get("ids"):
        given, params = ["id"], {**params, "id": params["ids"]}
    if not given:
        raise BadRequest('"value" must contain at least one of [id, symbol, slug]')
    if len(given) > 1:
        raise BadRequest('"value" contains a conflict between exclusive peers [id, symbol, slug]')
    by = given[0]
    converts = _converts(params)
    skip_invalid = params.get("skip_invalid", "false").lower() == "true"
    snapshot = market.snapshot()
    rates = usd_rates(market.seed, reference_date(now))
    index: dict[str, list[dict[str, Any]]] = {}
    for coin in snapshot:  # snapshot is sorted by rank, so lists come best-ranked first
        key = (
            str(coin["id"]) if by == "id" else coin[by].upper() if by == "symbol" else coin["slug"]
        )
        index.setdefault(key, []).append(coin)
    data: dict[str, Any] = {}
    for raw in params[by].split(","):
        token = raw.strip().upper() if by == "symbol" else raw.strip()
        if by == "id" and not token.isdigit():
            raise BadRequest(f'Invalid value for "id": "{raw}"')
        matches = index.get(token)
        if not matches:
            if skip_invalid:
                continue
            raise BadRequest(f'Invalid value for "{by}": "{raw.strip()}"')
        priced = [_priced(c, converts, rates) for c in matches]
        if by == "slug":
            data[str(priced[0]["id"])] = priced[0]
        elif by == "symbol" and version >= 2:
            data[token] = priced
        else:
            data[token] = priced[0]
    coins = [c for v in data.values() for c in (v if isinstance(v, list) else [v])]
    credits = credits_per_call(len(coins), len(converts))
    if version == 3:
        return 200, {"data": [_v3(c) for c in coins], "status": status(now, credits=credits)}
    return 200, {"data": data, "status": status(now, credits=credits)}


def _int(params: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name, str(default))
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise BadRequest(f'"{name}" must be an integer from {lo} to {hi}')
    return int(raw)


def listings_latest(params: dict[str, str], market: Market, now: datetime) -> Reply:
    start = _int(params, "start", 1, 1, 10**6)
    limit = _int(params, "limit", 100, 1, 5000)
    sort = params.get("sort", "market_cap")
    if sort not in _QUOTE_SORTS | _COIN_SORTS:
        raise BadRequest(f'"sort" must be one of [{", ".join(sorted(_QUOTE_SORTS | _COIN_SORTS))}]')
    text_sort = sort in ("name", "symbol")
    sort_dir = params.get("sort_dir", "asc" if text_sort else "desc")
    if sort_dir not in ("asc", "desc"):
        raise BadRequest('"sort_dir" must be one of [asc, desc]')
    converts = _converts(params)
    field = "market_cap" if sort == "market_cap_strict" else sort
    active = [c for c in market.snapshot() if c["is_active"] == 1]

    def key(coin: dict[str, Any]) -> Any:
        value = coin["quote"]["USD"][field] if field in _QUOTE_SORTS else coin[field]
        if text_sort or field == "date_added":
            return value.lower()
        # Nulls (unlimited max_supply) sort last either way.
        return (value is None) != (sort_dir == "desc"), value or 0.0

    ordered = sorted(active, key=key, reverse=sort_dir == "desc")
    page = ordered[start - 1 : start - 1 + limit]
    rates = usd_rates(market.seed, reference_date(now))
    data = [_priced(c, converts, rates) for c in page]
    credits = credits_per_call(len(data), len(converts))
    return 200, {"data": data, "status": status(now, credits=credits, total_count=len(active))}
