"""The quote message on Kafka: one coin's quote, the contract between producer and loader.

Key: the CoinMarketCap coin id as a string. Value: UTF-8 JSON of ``QuoteMessage``. The loader
validates every value against this model; whatever fails lands in ``raw.crypto_quotes_rejected``
with the reason this module gives.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
Source = Literal["coinmarketcap", "simulator"]

# Bounds that no real coin reaches; anything past them is a corrupt or hostile message.
_MAX_MONEY = 1e16  # USD 10 quadrillion: above any market cap or volume
_MAX_PRICE = 1e12
_MAX_SUPPLY = 1e22
_MAX_PERCENT = 1e7

Money = Annotated[float, Field(ge=0, le=_MAX_MONEY, allow_inf_nan=False)]
Supply = Annotated[float, Field(ge=0, le=_MAX_SUPPLY, allow_inf_nan=False)]
Percent = Annotated[float, Field(ge=-_MAX_PERCENT, le=_MAX_PERCENT, allow_inf_nan=False)]


class QuoteMessage(BaseModel):
    """One coin's quote in one currency at one source time (``last_updated``)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    schema_version: Literal[1]
    source: Source
    coin_id: Annotated[int, Field(gt=0, lt=2**31)]
    symbol: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(min_length=1, max_length=256)]
    slug: Annotated[str, Field(min_length=1, max_length=256)]
    cmc_rank: Annotated[int, Field(gt=0, lt=2**31)] | None = None
    num_market_pairs: Annotated[int, Field(ge=0, lt=2**31)] | None = None
    circulating_supply: Supply | None = None
    total_supply: Supply | None = None
    max_supply: Supply | None = None
    infinite_supply: bool | None = None
    quote_currency: Annotated[str, Field(pattern=r"^[A-Z0-9]{2,10}$")]
    price: Annotated[float, Field(gt=0, le=_MAX_PRICE, allow_inf_nan=False)]
    volume_24h: Money | None = None
    volume_change_24h: Percent | None = None
    percent_change_1h: Percent | None = None
    percent_change_24h: Percent | None = None
    percent_change_7d: Percent | None = None
    percent_change_30d: Percent | None = None
    market_cap: Money | None = None
    market_cap_dominance: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] | None = None
    fully_diluted_market_cap: Money | None = None
    last_updated: datetime
    fetched_at: datetime

    @field_validator("symbol", "name", "slug")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        # PostgreSQL text and jsonb cannot hold U+0000; refuse it here, not mid-batch in SQL.
        if "\x00" in value:
            raise ValueError("must not contain the NUL character")
        return value

    @field_validator("last_updated", "fetched_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamps must carry a timezone (ISO-8601 with Z or +00:00)")
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC datetime
            raise ValueError("timestamp is out of range once converted to UTC") from None

    @property
    def key(self) -> bytes:
        """The Kafka key: the coin id as a string."""
        return str(self.coin_id).encode()

    def to_bytes(self) -> bytes:
        """The Kafka value: UTF-8 JSON."""
        return self.model_dump_json().encode()


class InvalidMessage(ValueError):
    """A Kafka value that is not a valid ``QuoteMessage``; ``reason`` says why, for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_quote_message(value: bytes | None) -> QuoteMessage:
    """Decode and validate one Kafka value, or raise ``InvalidMessage`` with a readable reason."""
    if value is None or len(value) == 0:
        raise InvalidMessage("empty message (null or zero-length value)")
    try:
        # Fast path: nearly every message is valid, and one pass over the bytes decides that.
        # Only a failure pays for the slower steps below, which say exactly what is wrong.
        return QuoteMessage.model_validate_json(value)
    except (ValidationError, ValueError, RecursionError):
        pass
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidMessage(f"not UTF-8: {e.reason} at byte {e.start}") from None
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as e:  # ValueError: JSONDecodeError, ints > 4300 digits
        raise InvalidMessage(f"not JSON: {e}"[:500]) from None
    if not isinstance(payload, dict):
        raise InvalidMessage(f"not a JSON object but a {type(payload).__name__}")
    version = payload.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InvalidMessage(
            f"unknown schema_version {_brief(version)}; this loader understands {SCHEMA_VERSION}"
        )
    try:
        return QuoteMessage.model_validate_json(text)
    except ValidationError as e:
        raise InvalidMessage(_describe(e)) from None


def _brief(value: Any) -> str:
    # Bounded and never recursive: the value is hostile input headed for a log and a table.
    if isinstance(value, dict | list):
        return f"<a JSON {'object' if isinstance(value, dict) else 'array'}>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(error: ValidationError) -> str:
    parts = []
    for err in error.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    more = error.error_count() - len(parts)
    return "invalid quote: " + "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def build_quote_message(
    coin: dict[str, Any],
    quote_currency: str,
    source: Source,
    fetched_at: datetime,
) -> QuoteMessage:
    """Turn one CoinMarketCap coin object (any quotes/latest shape, normalised) into a message.

    Raises ``InvalidMessage`` when the coin cannot make a valid quote (no price, say), so the
    producer can skip it with a warning instead of publishing garbage.
    """
    quotes = coin.get("quote")
    quote = quotes.get(quote_currency) if isinstance(quotes, dict) else None
    if not isinstance(quote, dict):
        raise InvalidMessage(f"coin {coin.get('id')} has no quote in {quote_currency}")
    payload = {
        "schema_version": SCHEMA_VERSION,
        "source": source,
        "coin_id": coin.get("id"),
        "symbol": coin.get("symbol"),
        "name": coin.get("name"),
        "slug": coin.get("slug"),
        "cmc_rank": coin.get("cmc_rank"),
        "num_market_pairs": coin.get("num_market_pairs"),
        "circulating_supply": coin.get("circulating_supply"),
        "total_supply": coin.get("total_supply"),
        "max_supply": coin.get("max_supply"),
        "infinite_supply": coin.get("infinite_supply"),
        "quote_currency": quote_currency,
        "price": quote.get("price"),
        "volume_24h": quote.get("volume_24h"),
        "volume_change_24h": quote.get("volume_change_24h"),
        "percent_change_1h": quote.get("percent_change_1h"),
        "percent_change_24h": quote.get("percent_change_24h"),
        "percent_change_7d": quote.get("percent_change_7d"),
        "percent_change_30d": quote.get("percent_change_30d"),
        "market_cap": quote.get("market_cap"),
        "market_cap_dominance": quote.get("market_cap_dominance"),
        "fully_diluted_market_cap": quote.get("fully_diluted_market_cap"),
        "last_updated": quote.get("last_updated") or coin.get("last_updated"),
        "fetched_at": fetched_at.astimezone(UTC).isoformat(),
    }
    # Round-trip through JSON so the producer applies exactly the checks the loader will.
    return parse_quote_message(json.dumps(payload).encode())
