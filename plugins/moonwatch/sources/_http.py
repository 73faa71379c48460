"""HTTP plumbing shared by the source clients: secret redaction, request errors, retry timing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from moonwatch.errors import SourceUnavailableError

logger = logging.getLogger(__name__)

REDACTED = "***"
# Secrets of live clients. urllib3 logs request paths at DEBUG, and a key can sit in a URL
# (CoinMarketCap accepts ?CMC_PRO_API_KEY=...), so its records are scrubbed as well.
_SECRETS: set[str] = set()


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            message = record.getMessage()
            cleaned = redact(message, _SECRETS)
            if cleaned != message:
                record.msg, record.args = cleaned, ()
        return True


_FILTER = _RedactingFilter()


def register_secret(secret: str) -> None:
    """Scrub ``secret`` from third-party HTTP log records (urllib3) from now on."""
    if secret:
        _SECRETS.add(secret)
        for name in ("urllib3.connectionpool", "urllib3.util.retry"):
            third_party = logging.getLogger(name)
            if _FILTER not in third_party.filters:
                third_party.addFilter(_FILTER)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty secret replaced, so it is safe for logs and exceptions."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
            # A body cut short can end inside an echoed secret: scrub that prefix as well.
            for length in range(len(secret) - 1, 5, -1):
                if text.endswith(secret[:length]):
                    text = text[:-length] + REDACTED
                    break
    return text


def unavailable(
    what: str, error: requests.RequestException, secrets: Iterable[str | None]
) -> SourceUnavailableError:
    """A transient error for a timeout or connection failure, with any secret scrubbed.

    requests' messages embed the URL and sometimes the prepared request, so the text is redacted
    rather than trusted.
    """
    secrets = list(secrets)
    if isinstance(error, requests.Timeout):
        kind = "timed out"
    elif isinstance(error, requests.ConnectionError):
        kind = "could not be reached"
    else:
        kind = "failed"
    detail = redact(f"{type(error).__name__}: {error}", secrets)[:300]
    return SourceUnavailableError(
        f"{what} {kind} ({detail}). Retrying later usually helps; if it persists, check the "
        "network and the base URL setting."
    )


def safe_cause(error: BaseException, secrets: Iterable[str | None]) -> BaseException | None:
    """``error`` when chaining it cannot leak a secret, else None (the chain is dropped)."""
    text = f"{error} {error!r}"
    return None if any(s and s in text for s in secrets) else error


def _wait_for(backoff_seconds: float, backoff_max: float) -> Callable[[RetryCallState], float]:
    exponential = wait_exponential(multiplier=backoff_seconds, max=backoff_max)

    def wait(state: RetryCallState) -> float:
        # A source that says how long to wait (Retry-After, the next minute) knows best.
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return max(0.0, float(retry_after))
        return exponential(state)

    return wait


def retrying(
    what: str,
    max_attempts: int,
    sleep: Callable[[float], Any],
    backoff_seconds: float = 1.0,
    backoff_max: float = 30.0,
) -> Retrying:
    """Retry only ``SourceUnavailableError``; everything else surfaces on the first attempt."""

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "%s attempt %d/%d failed: %s; retrying in %.1f s",
            what,
            state.attempt_number,
            max_attempts,
            error,
            wait,
        )

    return Retrying(
        stop=stop_after_attempt(max_attempts),
        wait=_wait_for(backoff_seconds, backoff_max),
        retry=retry_if_exception_type(SourceUnavailableError),
        sleep=sleep,
        before_sleep=log_retry,
        reraise=True,
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form only), else None."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
