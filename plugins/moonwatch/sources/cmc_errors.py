"""CoinMarketCap's error codes: which are worth retrying, and what a person should do."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from moonwatch.errors import SourceRejectedError, SourceUnavailableError
from moonwatch.sources._http import HttpReply, parse_retry_after, redact

_KEY_FIX = (
    "Set CMC_API_KEY to the key shown at https://pro.coinmarketcap.com/account, or unset it "
    "(and CMC_BASE_URL) to use the offline simulator."
)
# error_code -> what it means and what a person should do. None of these is retried: retrying
# cannot fix a key or a plan, and hammering a spent daily/monthly/IP allowance makes it worse.
_REJECTIONS: dict[int, str] = {
    1001: "the API key is invalid. " + _KEY_FIX,
    1002: "the API key is missing. " + _KEY_FIX,
    1003: "the key's plan requires a payment. Pay or renew the plan at "
    "https://pro.coinmarketcap.com/account/plan, or use a free Basic key.",
    1004: "the key's plan payment has expired. Renew the plan at "
    "https://pro.coinmarketcap.com/account/plan, or use a free Basic key.",
    1005: "an API key is required. " + _KEY_FIX,
    1006: "the key's plan does not include this endpoint or parameter. Use quotes/latest v1/v2 "
    "and listings/latest (free plan) or upgrade the plan.",
    1007: "the API key is disabled. Create a new key or contact CoinMarketCap support.",
    1009: "the plan's DAILY request limit is reached. Polling resumes after midnight UTC; lower "
    "the schedule or the number of coins so a day fits the plan.",
    1010: "the plan's MONTHLY credit limit is reached. Wait for the next month or upgrade; set "
    "MOONWATCH_CMC_MONTHLY_CREDITS to the plan's allowance so the producer stops before this.",
    1011: "this IP address hit CoinMarketCap's IP rate limit. Slow the schedule down and check "
    "that no other process shares this IP and key.",
    400: "a request parameter is invalid. Check MOONWATCH_SYMBOLS (tickers or id:<n>) and "
    "MOONWATCH_QUOTE_CURRENCY.",
}
_MINUTE_LIMIT = 1008


def error_for(
    what: str,
    response: HttpReply,
    code: int,
    message: str,
    secrets: list[str],
    clock: Callable[[], datetime],
) -> Exception:
    """The Moonwatch error for a CoinMarketCap error answer: transient (retried) or not."""
    said = redact(message, secrets)[:200]
    head = f"{what} failed: HTTP {response.status_code}, error {code} ({said})"
    if code == _MINUTE_LIMIT or (response.status_code == 429 and code not in _REJECTIONS):
        error = SourceUnavailableError(
            f"{head}: the per-minute rate limit; waiting for the next minute and retrying. "
            "If it recurs, poll less often or ask for fewer coins."
        )
        error.retry_after = _retry_after(response, clock)  # type: ignore[attr-defined]
        return error
    if code in _REJECTIONS:
        rejected = SourceRejectedError(f"{head}: {_REJECTIONS[code]} Retrying will not help.")
        rejected.error_code = code  # type: ignore[attr-defined]  # callers may refine the advice
        return rejected
    if response.status_code >= 500 or code >= 500:
        return SourceUnavailableError(
            f"{head}: CoinMarketCap is having trouble; retried with backoff."
        )
    return SourceRejectedError(
        f"{head}: an error Moonwatch does not know; see "
        "https://coinmarketcap.com/api/documentation/v1/#section/Errors-and-Rate-Limits."
    )


def _retry_after(response: HttpReply, clock: Callable[[], datetime]) -> float:
    now = clock()
    header = parse_retry_after(response.headers.get("Retry-After"), now)
    if header is not None:
        return header
    # The per-minute window resets on the minute; one spare second avoids landing early.
    return math.ceil(60 - now.second - now.microsecond / 1e6) + 1.0
