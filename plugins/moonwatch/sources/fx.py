"""Daily fiat reference rates from Frankfurter (ECB data, no key), USD based.

GET ``{base_url}/latest?base=USD&symbols=EUR,SEK`` answers
``{"amount": 1.0, "base": "USD", "date": "YYYY-MM-DD", "rates": {"EUR": 0.92, "SEK": 10.4}}``.
The public v1 API lives at https://api.frankfurter.dev/v1 (the old api.frankfurter.app host
answers with a 301 redirect there, which is an error here: no redirect is followed, the message
names the target to put in MOONWATCH_FX_BASE_URL); the offline simulator serves the same shape at
``/frankfurter``. Each call has a total deadline and a body cap, as the CoinMarketCap client.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import requests

from moonwatch.errors import SourceRejectedError, SourceResponseError, SourceUnavailableError
from moonwatch.sources._http import (
    HttpLimits,
    HttpReply,
    bounded_get,
    parse_retry_after,
    retrying,
)

logger = logging.getLogger(__name__)

FRANKFURTER_URL = "https://api.frankfurter.dev/v1"
SIMULATED_HEADER = "X-Moonwatch-Simulated"
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class FxRates:
    """Units of each currency per 1 USD on ``as_of_date`` (USD itself is 1)."""

    as_of_date: date
    rates: dict[str, Decimal]
    source: Literal["frankfurter", "simulator"]

    def convert(self, usd_amount: Decimal, currency: str) -> Decimal:
        return usd_amount * self.rates[currency.upper()]


def fetch_usd_rates(
    base_url: str,
    currencies: Iterable[str],
    timeout: float = 10.0,
    *,
    max_attempts: int = 3,
    backoff_seconds: float = 1.0,
    sleep: Callable[[float], Any] = time.sleep,
    limits: HttpLimits | None = None,
) -> FxRates:
    """The latest USD-based rates for ``currencies``; every one present and positive, or raise.

    ``limits`` defaults to a total deadline of three ``timeout``s and the shared body cap.
    """
    wanted = sorted({c.strip().upper() for c in currencies if c.strip()})
    bad = [c for c in wanted if not _CURRENCY.match(c)]
    if bad:
        raise ValueError(f"not ISO currency codes: {bad}; use three letters such as EUR, SEK")
    others = [c for c in wanted if c != "USD"]
    url = base_url.rstrip("/") + "/latest"
    params = {"base": "USD"} | ({"symbols": ",".join(others)} if others else {})
    what = f"FX rates GET {url}"
    limits = limits or HttpLimits.for_timeout(timeout)
    with requests.Session() as session:
        for attempt in retrying(what, max_attempts, sleep, backoff_seconds):
            with attempt:
                response = _get(session, what, url, params, limits)
    return _parse(what, response, others)


def _get(
    session: requests.Session, what: str, url: str, params: dict[str, str], limits: HttpLimits
) -> HttpReply:
    response = bounded_get(session, what, url, params, limits, [], "MOONWATCH_FX_BASE_URL")
    if response.status_code >= 500 or response.status_code == 429:
        error = SourceUnavailableError(f"{what} answered HTTP {response.status_code}; retrying.")
        error.retry_after = parse_retry_after(response.headers.get("Retry-After"))  # type: ignore[attr-defined]
        raise error
    if response.status_code >= 400:
        raise SourceRejectedError(
            f"{what} answered HTTP {response.status_code} ({response.text[:200]!r}): usually an "
            f"unknown currency in {params.get('symbols', '')}. Check the currency codes, and "
            "that MOONWATCH_FX_BASE_URL points at Frankfurter's v1 API "
            f"({FRANKFURTER_URL})."
        )
    return response


def _parse(what: str, response: HttpReply, others: list[str]) -> FxRates:
    try:
        if not response.is_json:  # checked before parsing; only then was the body read whole
            raise ValueError(response.content_type)
        body = json.loads(response.content, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        raise SourceResponseError(
            f"{what} answered with a body that is not JSON (Content-Type "
            f"{response.content_type[:80]!r}, expected application/json: "
            f"{response.text[:80]!r}); check MOONWATCH_FX_BASE_URL."
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get("rates"), dict):
        raise SourceResponseError(
            f"{what} answered without a 'rates' object; not Frankfurter's shape."
        )
    if body.get("base") != "USD":
        raise SourceResponseError(f"{what} answered base {body.get('base')!r}, asked for USD.")
    try:
        as_of = date.fromisoformat(str(body.get("date")))
    except ValueError:
        raise SourceResponseError(
            f"{what} answered an unreadable date {body.get('date')!r}."
        ) from None
    rates: dict[str, Decimal] = {"USD": Decimal(1)}
    missing, invalid = [], []
    for currency in others:
        value = body["rates"].get(currency)
        if value is None:
            missing.append(currency)
        elif not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
            invalid.append(f"{currency}={value!r}")
        else:
            rates[currency] = value
    if missing or invalid:
        raise SourceResponseError(
            f"{what} for {as_of}: missing {missing or 'none'}, not positive finite numbers "
            f"{invalid or 'none'}. The source may not publish these currencies; drop them or "
            "use another MOONWATCH_FX_BASE_URL."
        )
    simulated = response.headers.get(SIMULATED_HEADER) == "true" or "notice" in body
    logger.info("FX rates for %s: %s", as_of, ", ".join(f"{k} {v}" for k, v in rates.items()))
    return FxRates(as_of, rates, "simulator" if simulated else "frankfurter")
