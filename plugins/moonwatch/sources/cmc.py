"""CoinMarketCap Pro API client: quotes/latest (v1, v2, v3), quotes/historical (v2),
listings/latest and key/info.

Every answer is checked for ``status.error_code`` (a 200 can carry an error), only transient
failures are retried, and the API key never reaches a log line, an exception or a repr. The key
only travels over https (or to loopback) and never follows a redirect; each call has a total
deadline and a body cap (see ``_http.bounded_get``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from pydantic import SecretStr

from moonwatch.errors import ConfigurationError, SourceRejectedError, SourceResponseError
from moonwatch.settings import CMC_PUBLIC_BASE_URL, SIMULATOR_DEFAULT_URL, Settings
from moonwatch.sources._http import (
    HttpLimits,
    HttpReply,
    bounded_get,
    key_url_problem,
    redact,
    register_secret,
    retrying,
)
from moonwatch.sources.cmc_errors import error_for
from moonwatch.sources.cmc_shapes import Coin, coins_by_id, coins_by_symbol, normalise_coin
from moonwatch.sources.credits import credits_per_call, historical_credits

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-CMC_PRO_API_KEY"


@dataclass(frozen=True)
class QuotesResult:
    """quotes/latest, normalised: v1-shaped coins in request order, plus what the API said."""

    coins: list[Coin]
    status: dict[str, Any]
    credit_count: int
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HistoricalResult:
    """quotes/historical: one v1-shaped coin per data point (``last_updated`` = its time)."""

    points: list[Coin]
    status: dict[str, Any]
    credit_count: int
    missing: list[str] = field(default_factory=list)


HISTORICAL_PATH = "/v2/cryptocurrency/quotes/historical"
PLAN_LACKS_ENDPOINT = 1006
KEY_INFO_PATH = "/v1/key/info"
# CoinMarketCap's plans by their monthly credits (its pricing page); /v1/key/info gives the
# limit, not the name. Basic, the free plan, has no historical endpoints.
PLANS: dict[int, str] = {
    10_000: "Basic (free)",
    110_000: "Hobbyist",
    300_000: "Startup",
    1_200_000: "Standard",
    3_000_000: "Professional",
}


def plan_name(credit_limit_monthly: Any) -> str:
    """``Basic (free)`` for 10,000 credits a month, and so on; else the limit itself."""
    if type(credit_limit_monthly) is int and credit_limit_monthly in PLANS:
        return f"{PLANS[credit_limit_monthly]} ({credit_limit_monthly:,} credits a month)"
    if type(credit_limit_monthly) is int:
        return f"with {credit_limit_monthly:,} credits a month"
    return "(unknown: /v1/key/info did not say)"


def historical_plan_message(plan: str) -> str:
    """What a person reads when the key's plan has no historical quotes (error 1006)."""
    return (
        f"CoinMarketCap refused historical quotes (error 1006): this key's plan {plan} does not "
        "include /v2/cryptocurrency/quotes/historical. History needs a paid plan (Hobbyist or "
        "higher, see https://coinmarketcap.com/api/pricing/). Nothing was charged or loaded. "
        "Live quotes are unaffected; run without CMC_API_KEY to see simulated history, or "
        "upgrade the plan and run the backfill again."
    )


def historical_point(coin: Coin, point: Any) -> Coin | None:
    """One ``quotes[]`` entry of a history answer as a v1-shaped coin at that time."""
    if not isinstance(point, dict) or not isinstance(point.get("quote"), dict):
        return None
    stamp = point.get("timestamp")
    quote: dict[str, Any] = {}
    for currency, figures in point["quote"].items():
        if isinstance(figures, dict):
            quote[str(currency).upper()] = {**figures, "last_updated": stamp}
    supplies = next(iter(quote.values()), {})
    return {
        "id": coin["id"],
        "name": coin.get("name"),
        "symbol": coin.get("symbol"),
        "slug": coin.get("slug"),
        "circulating_supply": supplies.get("circulating_supply"),
        "total_supply": supplies.get("total_supply"),
        "last_updated": stamp,
        "quote": quote,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass(frozen=True)
class ListingsResult:
    """listings/latest: v1 coins in the order the API sorted them."""

    coins: list[Coin]
    status: dict[str, Any]
    credit_count: int


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CoinMarketCapClient:
    """A small, careful client for the two endpoints Moonwatch uses.

    ``sleep`` and ``clock`` are injectable so tests can assert the waits (a 1008 waits for the
    next minute) without sleeping. ``deadline`` (seconds for a whole call, default three times
    ``timeout``) and ``max_body_bytes`` bound what one answer may cost.
    """

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr | None,
        timeout: float = 10.0,
        max_attempts: int = 4,
        *,
        backoff_seconds: float = 1.0,
        sleep: Callable[[float], Any] = time.sleep,
        clock: Callable[[], datetime] = _utc_now,
        deadline: float | None = None,
        max_body_bytes: int | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        key = api_key.get_secret_value().strip() if api_key is not None else ""
        problem = key_url_problem(base_url, "CMC_BASE_URL") if key else None
        if problem:
            raise ConfigurationError(problem)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        limits = HttpLimits.for_timeout(timeout, max_body_bytes)
        self._limits = HttpLimits(timeout, deadline or limits.deadline, limits.max_bytes)
        self.max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._clock = clock
        self._secrets = [key] if key else []
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"
        if key:
            self._session.headers[API_KEY_HEADER] = key
            register_secret(key)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> CoinMarketCapClient:
        """The client the settings describe; no key and no URL means the local simulator."""
        default = SIMULATOR_DEFAULT_URL if settings.is_simulated else CMC_PUBLIC_BASE_URL
        return cls(
            settings.cmc_base_url or default,
            None if settings.is_simulated else settings.cmc_api_key,
            timeout=settings.http_timeout_seconds,
            **kwargs,
        )

    @property
    def has_key(self) -> bool:
        return bool(self._secrets)

    def __repr__(self) -> str:
        key = "set" if self._secrets else "none"
        url = redact(self.base_url, self._secrets)
        return f"CoinMarketCapClient(base_url={url!r}, api_key=<{key}>)"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> CoinMarketCapClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- endpoints -----------------------------------------------------------------------------

    def quotes_latest(
        self,
        ids: Sequence[int] = (),
        symbols: Sequence[str] = (),
        convert: str = "USD",
        version: int = 1,
        prefer_ids: Sequence[int] = (),
    ) -> QuotesResult:
        """Latest quotes, by id where ids are given (ids are unique, tickers are not).

        Ids and tickers together cost two calls: the API refuses both in one request. Coins the
        API did not return are logged and listed in ``missing``; none at all raises.
        """
        if version not in (1, 2, 3):
            raise ValueError("version must be 1, 2 or 3")
        ids, symbols = list(dict.fromkeys(ids)), list(dict.fromkeys(s.upper() for s in symbols))
        if not ids and not symbols:
            raise ValueError("quotes_latest needs ids or symbols")
        path = f"/v{version}/cryptocurrency/quotes/latest"
        coins: list[Coin] = []
        missing: list[str] = []
        status: dict[str, Any] = {}
        credits = 0
        if ids:
            body = self._get(path, self._quote_params("id", ids, convert, version))
            found, lost = coins_by_id(body["data"], ids)
            coins, missing, status = found, lost, body["status"]
            credits += self._credits(status, len(found), convert)
        if symbols:
            body = self._get(path, self._quote_params("symbol", symbols, convert, version))
            prefer = set(prefer_ids) | set(ids)
            found, lost = coins_by_symbol(body["data"], symbols, prefer)
            seen = {c["id"] for c in coins}
            coins += [c for c in found if c["id"] not in seen]
            missing += lost
            status = body["status"]
            credits += self._credits(status, len(found), convert)
        if missing:
            logger.warning(
                "CoinMarketCap returned no data for %s (unknown or delisted); check "
                "MOONWATCH_SYMBOLS. Continuing with %d coin(s).",
                ", ".join(missing),
                len(coins),
            )
        if not coins:
            raise SourceResponseError(
                f"CoinMarketCap returned none of the requested coins ({', '.join(missing)}). "
                "Check MOONWATCH_SYMBOLS against https://coinmarketcap.com (ids are safest)."
            )
        logger.info(
            "CoinMarketCap quotes v%d: %d coin(s), %d credit(s)", version, len(coins), credits
        )
        return QuotesResult(coins=coins, status=status, credit_count=credits, missing=missing)

    def listings_latest(
        self,
        limit: int = 100,
        sort: str = "market_cap",
        convert: str = "USD",
        *,
        start: int = 1,
        sort_dir: str = "desc",
    ) -> ListingsResult:
        """The top ``limit`` coins by ``sort`` (market_cap, volume_24h, price, ...)."""
        if not 1 <= limit <= 5000:
            raise ValueError("limit must be between 1 and 5000")
        params = {
            "start": start,
            "limit": limit,
            "sort": sort,
            "sort_dir": sort_dir,
            "convert": convert,
        }
        body = self._get("/v1/cryptocurrency/listings/latest", params)
        if not isinstance(body["data"], list):
            raise SourceResponseError(
                "CoinMarketCap listings/latest 'data' is not a list; the API changed shape or "
                "CMC_BASE_URL points at something else."
            )
        coins = [c for c in (normalise_coin(r) for r in body["data"]) if c is not None]
        dropped = len(body["data"]) - len(coins)
        if dropped:
            logger.warning("CoinMarketCap listings: dropped %d entries without a coin id", dropped)
        credits = self._credits(body["status"], len(coins), convert)
        logger.info(
            "CoinMarketCap listings by %s: %d coins, %d credit(s)", sort, len(coins), credits
        )
        return ListingsResult(coins=coins, status=body["status"], credit_count=credits)

    def quotes_historical(
        self,
        ids: Sequence[int],
        time_start: datetime,
        time_end: datetime,
        interval: str = "5m",
        convert: str = "USD",
    ) -> HistoricalResult:
        """``/v2/cryptocurrency/quotes/historical`` for ``ids`` from ``time_start`` to
        ``time_end`` (inclusive) every ``interval``: one v1-shaped coin per point, oldest first.

        CoinMarketCap charges one credit per 100 data points returned (plus one per extra
        ``convert``). Plans without history (the free Basic plan) answer error 1006: that
        becomes a ``SourceRejectedError`` naming the plan and what to do, not a stack trace.
        """
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise ValueError("quotes_historical needs ids")
        if time_end < time_start:
            raise ValueError("time_end must not be before time_start")
        params = {
            "id": ",".join(str(i) for i in ids),
            "time_start": _iso(time_start),
            "time_end": _iso(time_end),
            "interval": interval,
            "count": 10_000,
            "convert": convert,
        }
        try:
            body = self._get(HISTORICAL_PATH, params)
        except SourceRejectedError as e:
            if getattr(e, "error_code", None) == PLAN_LACKS_ENDPOINT:
                raise SourceRejectedError(historical_plan_message(self._plan_name())) from e
            raise
        points: list[Coin] = []
        found, missing = coins_by_id(body["data"], ids)
        for coin in found:
            quotes = coin.get("quotes")
            for point in quotes if isinstance(quotes, list) else []:
                shaped = historical_point(coin, point)
                if shaped is not None:
                    points.append(shaped)
        points.sort(key=lambda c: (c["last_updated"], c["id"]))
        credits = self._credits(body["status"], len(points), convert, per_points=True)
        if missing:
            logger.warning("CoinMarketCap history has no data for %s", ", ".join(missing))
        logger.info(
            "CoinMarketCap history %s..%s every %s: %d point(s) for %d coin(s), %d credit(s)",
            params["time_start"],
            params["time_end"],
            interval,
            len(points),
            len(found),
            credits,
        )
        return HistoricalResult(
            points=points, status=body["status"], credit_count=credits, missing=missing
        )

    def key_info(self) -> dict[str, Any]:
        """``/v1/key/info``: the plan's monthly credit limit and this month's use (no credits)."""
        return self._get(KEY_INFO_PATH, {})["data"]

    def _plan_name(self) -> str:
        """The key's plan, told by its monthly credits (CoinMarketCap does not name it)."""
        try:
            limit = self.key_info().get("plan", {}).get("credit_limit_monthly")
        except Exception as e:  # noqa: BLE001 - naming the plan is best effort
            logger.info("could not read /v1/key/info to name the plan: %s", e)
            limit = None
        return plan_name(limit)

    # -- plumbing ------------------------------------------------------------------------------

    @staticmethod
    def _quote_params(by: str, values: Sequence[Any], convert: str, version: int) -> dict:
        params: dict[str, Any] = {by: ",".join(str(v) for v in values), "convert": convert}
        if version in (1, 2):
            # Without it one unknown ticker turns the whole call into a 400.
            params["skip_invalid"] = "true"
        return params

    @staticmethod
    def _credits(status: dict[str, Any], coins: int, convert: str, per_points: bool = False) -> int:
        count = status.get("credit_count")
        # Trust only a plausible count (a call costs tens of credits; never a bool): an absurd
        # one would overflow the credit ledger's integer column and fail the task after the fetch.
        if type(count) is int and 0 <= count <= 1_000_000:
            return count
        converts = len(convert.split(","))
        if per_points:
            return historical_credits(coins, converts)
        return credits_per_call(coins, converts=converts)

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        what = f"CoinMarketCap GET {path}"
        for attempt in retrying(what, self.max_attempts, self._sleep, self._backoff):
            with attempt:
                return self._get_once(what, path, params)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def _get_once(self, what: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        url = self.base_url + path
        response = bounded_get(
            self._session, what, url, params, self._limits, self._secrets, "CMC_BASE_URL"
        )
        return self._check(what, response)

    def _check(self, what: str, response: HttpReply) -> dict[str, Any]:
        body = None
        if response.is_json:  # only a JSON content type is parsed (and only it is read whole)
            try:
                body = json.loads(response.content)
            except ValueError:
                body = None
        status = body.get("status") if isinstance(body, dict) else None
        code = status.get("error_code") if isinstance(status, dict) else None
        try:
            code = int(code) if code is not None else 0
        except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
            code = -1
        if code != 0:
            message = status.get("error_message") if isinstance(status, dict) else None
            raise error_for(what, response, code, str(message or ""), self._secrets, self._clock)
        if response.status_code >= 400:
            reason = response.reason or ""
            raise error_for(
                what, response, response.status_code, reason, self._secrets, self._clock
            )
        if body is None:
            snippet = redact(response.text, self._secrets)[:120]  # redact first: no key halves
            ctype = redact(response.content_type, self._secrets)[:80]
            raise SourceResponseError(
                f"{what} answered HTTP {response.status_code} with a body that is not JSON "
                f"(Content-Type {ctype!r}, expected application/json: {snippet!r}). "
                "Check that CMC_BASE_URL points at CoinMarketCap or the simulator."
            )
        if not isinstance(status, dict):
            raise SourceResponseError(
                f"{what} answered without a 'status' object; not the API shape."
            )
        if "data" not in body:
            said = redact(str(status), self._secrets)[:300]
            raise SourceResponseError(f"{what} answered without 'data' (status: {said}).")
        return body
