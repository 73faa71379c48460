"""CoinMarketCap's endpoints as the simulator answers them: shapes, parameters, credits, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from moonwatch.sources.credits import credits_per_call, historical_credits, month_end
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


# quotes/historical's ``interval`` values (CoinMarketCap's list) in minutes. "1m" is the
# simulator's own addition: its market has a value every minute, so offline history can be as
# fine as the live feed; the real API's finest interval is "5m".
HISTORICAL_INTERVALS: dict[str, int] = {
    "1m": 1, "5m": 5, "10m": 10, "15m": 15, "30m": 30, "45m": 45, "hourly": 60, "1h": 60,
    "2h": 120, "3h": 180, "4h": 240, "6h": 360, "12h": 720, "daily": 1440, "24h": 1440,
    "1d": 1440, "2d": 2880, "3d": 4320, "weekly": 10080, "7d": 10080, "14d": 20160,
    "15d": 21600, "monthly": 43200, "30d": 43200, "60d": 86400, "90d": 129600,
    "365d": 525600, "yearly": 525600,
}  # fmt: skip
MAX_HISTORICAL_COUNT = 10_000


def _moment(params: dict[str, str], name: str) -> datetime | None:
    """``time_start``/``time_end``: Unix seconds or ISO 8601, as CoinMarketCap accepts."""
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        if raw.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(raw), UTC)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise BadRequest(f'Invalid value for "{name}": "{raw[:40]}"') from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _historical_minutes(params: dict[str, str], now: datetime) -> list[int]:
    """The minutes (since the epoch) of the points to return, oldest first, none after now."""
    interval = params.get("interval", "5m")
    if interval not in HISTORICAL_INTERVALS:
        raise BadRequest(f'"interval" must be one of [{", ".join(HISTORICAL_INTERVALS)}]')
    step = HISTORICAL_INTERVALS[interval]
    count = _int(params, "count", 10, 1, MAX_HISTORICAL_COUNT)
    start, end = _moment(params, "time_start"), _moment(params, "time_end")
    if start is not None and end is not None and start > end:
        raise BadRequest('"time_start" must be before "time_end"')
    last = int(min(end or now, now).timestamp() // 60) // step * step
    if start is None:  # count periods back from time_end (or now)
        return [m for m in range(last - (count - 1) * step, last + 1, step)]
    first = -(-int(start.timestamp() // 60) // step) * step  # the first boundary >= start
    stop = last if end is not None else min(last, first + (count - 1) * step)
    return list(range(first, stop + 1, step))[:MAX_HISTORICAL_COUNT]


def quotes_historical(params: dict[str, str], market: Market, now: datetime) -> Reply:
    """``/v2/cryptocurrency/quotes/historical``: ``data`` maps each id to one coin, each
    symbol to a list of coins, each coin with ``quotes``: ``[{timestamp, quote: {CUR: ...}}]``.
    One credit per 100 data points returned (rounded up), plus one per extra currency."""
    given = [k for k in ("id", "symbol") if params.get(k)]
    if len(given) != 1:
        raise BadRequest('"value" must contain exactly one of [id, symbol]')
    by = given[0]
    converts = _converts(params)
    minutes = _historical_minutes(params, now)
    rates = usd_rates(market.seed, reference_date(now))
    data: dict[str, Any] = {}
    points = 0
    for raw in params[by].split(","):
        token = raw.strip().upper() if by == "symbol" else raw.strip()
        if by == "id" and not token.isdigit():
            raise BadRequest(f'Invalid value for "id": "{raw}"')
        specs = [
            c for c in market.coins if (str(c.id) if by == "id" else c.symbol.upper()) == token
        ]
        if not specs:
            if params.get("skip_invalid", "false").lower() == "true":
                continue
            raise BadRequest(f'Invalid value for "{by}": "{raw.strip()}"')
        coins = []
        for spec in specs:
            quotes = []
            for minute in minutes:
                usd = market.historical_quote(spec.id, minute)
                quote = {
                    cur: {
                        k: (v * rates[cur] if k in _MONEY and v is not None else v)
                        for k, v in usd.items()
                    }
                    for cur in converts
                }
                quotes.append({"timestamp": usd["timestamp"], "quote": quote})
            points += len(quotes)
            coins.append({"id": spec.id, "name": spec.name, "symbol": spec.symbol,
                          "is_active": 1 if spec.is_active else 0, "is_fiat": 0,
                          "quotes": quotes})  # fmt: skip
        data[token] = coins if by == "symbol" else coins[0]
    credits = historical_credits(points, len(converts))
    return 200, {"data": data, "status": status(now, credits=credits)}


def key_info(now: datetime, month_used: int, day_used: int, monthly_limit: int | None) -> Reply:
    """``/v1/key/info``: the plan's monthly credits and what this key used (costs nothing).
    Without a limit the simulator is unmetered and says so (``credit_limit_monthly`` null)."""
    left = None if monthly_limit is None else max(0, monthly_limit - month_used)
    reset = month_end(now)
    plan = {
        "credit_limit_monthly": monthly_limit,
        "credit_limit_monthly_reset": f"In {(reset - now).days} days",
        "credit_limit_monthly_reset_timestamp": reset.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "rate_limit_minute": None,
    }
    usage = {
        "current_day": {"credits_used": day_used},
        "current_month": {"credits_used": month_used, "credits_left": left},
    }
    return 200, {"data": {"plan": plan, "usage": usage}, "status": status(now)}
