"""HTTP plumbing shared by the source clients: secret redaction, request errors, retry timing,
and one bounded GET (no redirects, a total deadline, a body cap, JSON content type only)."""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.structures import CaseInsensitiveDict
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from moonwatch.errors import (
    SourceRejectedError,
    SourceResponseError,
    SourceUnavailableError,
)

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
    what: str, error: Exception, secrets: Iterable[str | None]
) -> SourceUnavailableError:
    """A transient error for a timeout or connection failure, with any secret scrubbed.

    requests' messages embed the URL and sometimes the prepared request, so the text is redacted
    rather than trusted. urllib3's and the socket's own errors come from reading a streamed body.
    """
    secrets = list(secrets)
    if isinstance(error, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        kind = "timed out"
    elif isinstance(error, requests.ConnectionError | urllib3.exceptions.HTTPError | OSError):
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
        if retry_after is not None and math.isfinite(retry_after):
            # Bounded whatever the source said: a day-long (or infinite) wait would hang the task.
            return min(max(0.0, float(retry_after)), MAX_RETRY_AFTER_SECONDS)
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


# The longest wait between attempts, whatever a server asks for. CoinMarketCap's per-minute
# window needs at most 61 s; anything longer is better left to the next scheduled run.
MAX_RETRY_AFTER_SECONDS = 90.0
_DELTA_SECONDS = re.compile(r"^\d+(\.\d+)?$")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header, at most ``MAX_RETRY_AFTER_SECONDS``.

    Both forms of RFC 9110 are read: delta-seconds (``120``) and an HTTP-date (relative to
    ``now``). Anything else (``1e400``, ``soon``, ``-5``) is None: the caller's own backoff
    applies, so a hostile or broken header can neither crash ``sleep`` nor stall the task.
    """
    value = (value or "").strip()
    if not value:
        return None
    if _DELTA_SECONDS.match(value):
        seconds = float(value)  # a 400-digit number is inf here, and is capped below
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # "-0000" means UTC without saying so
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


# -- base URLs ------------------------------------------------------------------------------------


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is this machine (localhost, 127.0.0.0/8, ::1)."""
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def key_url_problem(url: str, setting: str) -> str | None:
    """Why ``url`` must not carry an API key (anything but https, except loopback), or None."""
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme == "https" or (scheme == "http" and is_loopback_url(url)):
        return None
    shown = redact_url(url)
    return (
        f"{setting}={shown!r} is not an https URL, and an API key is set: the key would travel "
        f"in clear text. Use https (e.g. https://pro-api.coinmarketcap.com), point {setting} at "
        "127.0.0.1/localhost for a local test server, or unset the key to use the simulator."
    )


def redact_url(url: str) -> str:
    """``url`` without user:password@ and query string, cut short, safe to show."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        shown = f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else url
    except ValueError:
        shown = url
    return shown[:200]


# -- one bounded GET ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpLimits:
    """What one GET may cost. ``timeout`` bounds each connect and socket read; ``deadline``
    the call from its start to the body's last byte, since a server trickling a byte a second
    never trips a per-read timeout; ``max_bytes`` the body, read in chunks and abandoned past
    the cap. The status line and headers are bounded per read only (by the smaller of the
    two); http.client caps them at 100 lines of 64 KiB."""

    timeout: float = 10.0
    deadline: float = 30.0
    max_bytes: int = 32 * 2**20

    @classmethod
    def for_timeout(cls, timeout: float, max_bytes: int | None = None) -> HttpLimits:
        """Limits whose total deadline is three per-read timeouts (MOONWATCH_HTTP_TIMEOUT)."""
        return cls(timeout, 3 * timeout, max_bytes or cls.max_bytes)


# How much of a non-JSON body is read: enough for an error message, never a whole page.
_PREVIEW_BYTES = 512
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class HttpReply:
    """A fully read, bounded answer. ``content`` is the whole body when the content type is
    JSON, else at most a short preview (``is_json`` False)."""

    url: str
    status_code: int
    reason: str
    headers: CaseInsensitiveDict[str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "") or "no content type"

    @property
    def is_json(self) -> bool:
        media = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        return media == "application/json" or (
            media.startswith("application/") and media.endswith("+json")
        )


def bounded_get(
    session: requests.Session,
    what: str,
    url: str,
    params: dict[str, Any],
    limits: HttpLimits,
    secrets: Iterable[str | None],
    setting: str,
) -> HttpReply:
    """GET ``url`` once within ``limits``; never follows a redirect.

    A 3xx raises ``SourceRejectedError`` naming the target: following it would send the
    session's headers (the API key) to whatever host the answer names. Timeouts, resets and
    the deadline raise ``SourceUnavailableError``; a body over the cap ``SourceResponseError``.
    ``setting`` names the environment variable holding the base URL, for the messages.
    """
    secrets = list(secrets)
    started = time.monotonic()

    def left() -> float:
        return limits.deadline - (time.monotonic() - started)

    try:
        response = session.get(
            url,
            params=params,
            timeout=min(limits.timeout, limits.deadline),
            stream=True,
            allow_redirects=False,
        )
    except requests.RequestException as e:
        raise unavailable(what, e, secrets) from safe_cause(e, secrets)
    with response:
        if 300 <= response.status_code < 400:
            raise _redirected(what, response, secrets, setting)
        reply = HttpReply(
            url=response.url,
            status_code=response.status_code,
            reason=response.reason or "",
            headers=response.headers,
            content=b"",
        )
        cap = limits.max_bytes if reply.is_json else _PREVIEW_BYTES
        declared = response.headers.get("Content-Length", "")
        if reply.is_json and declared.isdigit() and int(declared) > cap:
            raise _too_large(what, cap, f"it declared {int(declared)} bytes", setting)
        body = _read(response, what, cap, not reply.is_json, left, limits, secrets, setting)
    return HttpReply(reply.url, reply.status_code, reply.reason, reply.headers, body)


def _read(
    response: requests.Response,
    what: str,
    cap: int,
    truncate: bool,
    left: Callable[[], float],
    limits: HttpLimits,
    secrets: list[str],
    setting: str,
) -> bytes:
    """The body in chunks (``read1``: whatever has arrived, so a trickle cannot hold one read
    open), each read's socket timeout cut to what is left of the deadline."""
    body = bytearray()
    while True:
        remaining = left()
        if remaining <= 0:
            raise _deadline(what, limits, len(body))
        sock = getattr(response.raw.connection, "sock", None)
        if sock is not None:
            sock.settimeout(min(limits.timeout, remaining))
        try:
            chunk = response.raw.read1(_CHUNK)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            if left() <= 0:
                raise _deadline(what, limits, len(body)) from None
            raise unavailable(what, e, secrets) from safe_cause(e, secrets)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > cap:
            if truncate:
                return bytes(body[:cap])
            raise _too_large(what, cap, f"stopped reading after {len(body)} bytes", setting)


def _redirected(
    what: str, response: requests.Response, secrets: list[str], setting: str
) -> SourceRejectedError:
    location = response.headers.get("Location")
    target = redact(urljoin(response.url, location), secrets)[:200] if location else "nowhere"
    return SourceRejectedError(
        f"{what} answered HTTP {response.status_code}, a redirect to {target!r}. Moonwatch never "
        "follows redirects, so the API key and requests cannot travel to a host you did not "
        f"configure. If the API really moved there, set {setting} to that https base URL; "
        f"otherwise check {setting} for a typo, or a proxy or captive portal rewriting requests."
    )


def _too_large(what: str, cap: int, detail: str, setting: str) -> SourceResponseError:
    return SourceResponseError(
        f"{what} answered a body larger than the {cap:,}-byte limit ({detail}); no API answer "
        f"Moonwatch asks for is that big. Check that {setting} points at the API, not at a "
        "download or an error page."
    )


def _deadline(what: str, limits: HttpLimits, received: int) -> SourceUnavailableError:
    return SourceUnavailableError(
        f"{what} did not finish within its {limits.deadline:g} s deadline ({received:,} body "
        "bytes had arrived): the server is too slow or trickling. Retrying later usually helps; "
        "if it persists, check the network, or raise MOONWATCH_HTTP_TIMEOUT (the deadline is "
        "three times it)."
    )
