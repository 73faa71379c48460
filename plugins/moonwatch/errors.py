"""One root exception for Moonwatch; subclasses say whether retrying can help.

Every message says what went wrong and what to do about it. Driver errors are wrapped with
``raise ...Error("...") from e`` so the cause stays on the chain without leaking secrets.
"""

from __future__ import annotations


class MoonwatchError(Exception):
    """Root of every error Moonwatch raises on purpose."""


class TransientError(MoonwatchError):
    """Retrying later can help: a timeout, a 5xx, a per-minute rate limit, a restarting service."""


class PermanentError(MoonwatchError):
    """Retrying will not help until a person changes something (a key, a plan, a setting)."""


class ConfigurationError(PermanentError):
    """A setting is missing or malformed; the message names the environment variable to fix."""


class SourceError(MoonwatchError):
    """Base for errors reading an upstream API (CoinMarketCap, FX rates)."""


class SourceUnavailableError(SourceError, TransientError):
    """The source is down, timing out or rate-limiting for a short while."""


class SourceRejectedError(SourceError, PermanentError):
    """The source refused the request (bad key, plan limits, bad parameter): fix, then rerun."""


class SourceResponseError(SourceError, TransientError):
    """The source answered with something that is not the documented shape."""


class CreditBudgetExceededError(PermanentError):
    """This month's CoinMarketCap credit budget is spent: the producer refuses to call."""


class BrokerError(TransientError):
    """Kafka is unreachable, or did not acknowledge every message."""


class WarehouseError(TransientError):
    """PostgreSQL is unreachable or failed mid-transaction; nothing was committed."""


class StackError(MoonwatchError):
    """The local stack launcher cannot start, stop or inspect a service."""
