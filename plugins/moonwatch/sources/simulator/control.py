"""Who may use the simulator's fault control (``/_sim/*``), and what a fault may ask for.

Fault control is off unless the simulator was given a token (``MOONWATCH_SIM_CONTROL_TOKEN``,
which tests and ``make chaos`` set; ``make up`` does not). Off, every ``/_sim/*`` route answers
404, as if it did not exist. On, a request must carry the token in ``X-Moonwatch-Sim-Token``
(compared in constant time), and a POST must be ``Content-Type: application/json``: a web page
can send neither without a CORS preflight, which the simulator never answers, so a site the user
visits cannot inject quotes or stall ``/health``. Every parameter is bounded.
"""

from __future__ import annotations

import hmac
import math
from typing import Any

TOKEN_ENV = "MOONWATCH_SIM_CONTROL_TOKEN"
TOKEN_HEADER = "X-Moonwatch-Sim-Token"

MAX_BODY_BYTES = 64 * 1024
MAX_FAULTS = 100
MAX_DELAY_SECONDS = 30.0
MAX_COUNT = 10_000
MAX_RETRY_AFTER = 86_400.0
MAX_MESSAGE_CHARS = 500
MAX_FAULT_BODY_CHARS = 16 * 1024
MAX_PREFIX_CHARS = 200


class ControlError(Exception):
    """A refused control request: ``status`` is the HTTP answer, the text says what to fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_token(expected: str, given: str | None) -> None:
    """Raise 401 without a token, 403 with a wrong one."""
    if not given:
        raise ControlError(401, f"fault control needs the {TOKEN_HEADER} header ({TOKEN_ENV})")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ControlError(403, f"wrong {TOKEN_HEADER}; use the simulator's {TOKEN_ENV}")


def check_json_request(content_type: str | None, length: str | None) -> int:
    """The body length of a control POST, once it is JSON and not too big (415/411/413)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise ControlError(
            415, f"control requests must be Content-Type: application/json, not {media!r}"
        )
    if length is None or not length.strip().isdigit():
        raise ControlError(411, "control requests need a Content-Length")
    size = int(length)
    if size > MAX_BODY_BYTES:
        raise ControlError(413, f"control bodies are at most {MAX_BODY_BYTES} bytes, got {size}")
    return size


def _int(body: dict[str, Any], name: str, lo: int, hi: int, nullable: bool) -> int | None:
    value = body.get(name)
    if value is None and nullable:
        return None
    if type(value) is not int or not lo <= value <= hi:
        also = " or null" if nullable else ""
        raise ControlError(400, f'"{name}" must be an integer from {lo} to {hi}{also}')
    return value


def _seconds(body: dict[str, Any], name: str, hi: float, nullable: bool) -> float | None:
    value = body.get(name)
    if value is None and nullable:
        return None
    if type(value) not in (int, float) or not math.isfinite(value) or not 0 <= value <= hi:
        also = " or null" if nullable else ""
        raise ControlError(400, f'"{name}" must be a number of seconds from 0 to {hi:g}{also}')
    return float(value)


def _text(body: dict[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise ControlError(400, f'"{name}" must be a string of at most {limit} characters')
    return value


def fault_fields(body: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    """The keyword arguments of a ``Fault``, every one checked against its bound."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ControlError(400, f"unknown fault fields {unknown}; known: {sorted(allowed)}")
    fields: dict[str, Any] = {
        "status": _int(body, "status", 100, 599, nullable=True),
        "error_code": _int(body, "error_code", 0, 99_999, nullable=True),
        "error_message": _text(body, "error_message", MAX_MESSAGE_CHARS),
        "retry_after": _seconds(body, "retry_after", MAX_RETRY_AFTER, nullable=True),
        "body": _text(body, "body", MAX_FAULT_BODY_CHARS),
    }
    if "count" in body:  # absent = once; null = until cleared
        fields["count"] = _int(body, "count", 1, MAX_COUNT, nullable=True)
    if "delay_seconds" in body:
        fields["delay_seconds"] = _seconds(body, "delay_seconds", MAX_DELAY_SECONDS, False)
    if "path_prefix" in body:
        prefix = _text(body, "path_prefix", MAX_PREFIX_CHARS)
        if not prefix or not prefix.startswith("/") or not prefix.isprintable():
            raise ControlError(400, '"path_prefix" must be a printable path starting with "/"')
        fields["path_prefix"] = prefix
    return fields


def config_fields(body: dict[str, Any]) -> bool:
    """``require_key`` of a ``/_sim/config`` body: a JSON boolean, nothing else."""
    unknown = sorted(set(body) - {"require_key"})
    if unknown or type(body.get("require_key", False)) is not bool:
        raise ControlError(400, 'the config body is {"require_key": true|false}')
    return bool(body.get("require_key", False))
