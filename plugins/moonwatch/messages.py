"""The quote message on Kafka, and the rules every stored coin figure follows.

Key: the CoinMarketCap coin id as a string. Value: UTF-8 JSON of ``QuoteMessage``. The loader
validates every value against this model; whatever fails lands in ``raw.crypto_quotes_rejected``
with the reason this module gives. Listings coins (``ListingCoin``) and FX rates (``FxRate``)
are checked against the same field types before they reach ``raw``, so every row in ``raw``
is one that the staging models' casts can read.

What is valid (the dbt staging and mart tests follow the same rules):

- ``price`` > 0 (and at most 1e12). A coin without a positive price is not a quote.
- ``market_cap``, ``fully_diluted_market_cap``, ``volume_24h`` and the supplies are >= 0 or
  null. Zero is a real value: CoinMarketCap reports ``market_cap`` 0 and null supplies for a
  coin whose supply it has not verified, and a coin can trade nothing in a day.
- ``market_cap_dominance`` is between 0 and 100 or null; percent changes are within +-1e7.
- ``cmc_rank`` and ``num_market_pairs`` fit a Postgres ``integer``.
- Timestamps are ISO-8601 strings with a timezone (``Z`` or ``+00:00``), not before
  ``EARLIEST_TIMESTAMP`` (Bitcoin's genesis block: no coin was priced earlier), and not from the
  future: ``last_updated`` is at most ``MAX_CLOCK_SKEW`` after ``fetched_at``, and the loader
  refuses a ``fetched_at`` more than ``MAX_CLOCK_SKEW`` after its own clock. A future time
  would otherwise pin a coin's latest price and look fresh forever.
- ``symbol``: 1 to 32 letters, digits, marks or symbols (CoinMarketCap tickers such as
  ``BTC``, ``USDC.E``, ``$WIF``, ``1INCH``); never whitespace, control characters or the
  markup characters ``< > " ' & `` and backtick.
- ``name``: up to 128 characters; spaces, dots, dashes, digits and any language's letters are
  fine. Refused: control and bidirectional-override characters, HTML tags or character
  references (``<b``, ``&#60;``), and names without a single letter, digit or symbol.
- ``slug``: up to 128 letters, digits and ``- _ . ~`` (it is a URL path segment).
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
Source = Literal["coinmarketcap", "simulator"]

# How far a source's or producer's clock may run ahead of the one judging it. A few minutes
# absorb ordinary clock drift between machines; anything beyond is a broken or hostile time.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Bitcoin's genesis block (2009-01-03): no cryptocurrency was quoted or listed before it.
EARLIEST_TIMESTAMP = datetime(2009, 1, 3, tzinfo=UTC)
# The ECB's euro reference rates (Frankfurter's data) begin on 1999-01-04.
EARLIEST_FX_DATE = date(1999, 1, 4)
# A quote message is about 1 KB; anything far larger is not one. The loader quarantines a
# bigger value without parsing it and keeps only its first ``REJECTED_PAYLOAD_BYTES``.
MAX_MESSAGE_BYTES = 64 * 1024
REJECTED_PAYLOAD_BYTES = 4096

# Bounds that no real coin reaches; anything past them is a corrupt or hostile message. They
# also keep every number inside what the staging casts (integer, double precision) can read.
_MAX_MONEY = 1e16  # USD 10 quadrillion: above any market cap or volume
_MAX_PRICE = 1e12
_MAX_SUPPLY = 1e22
_MAX_PERCENT = 1e7
_MAX_INT = 2**31  # Postgres integer

_ISO_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)
_MARKUP = re.compile(r"<[A-Za-z/!?]|&#?[A-Za-z0-9]+;")
_SYMBOL_PUNCTUATION = frozenset("$.-_+*!@#%/:^~|=()[]")
_TICKER_MARKUP = frozenset("<>\"'&`")
_SLUG = re.compile(r"[\w.~-]+")
# Zero-width (non-)joiners build emoji and some scripts' letters; every other format
# character (bidirectional overrides, invisible separators) only disguises text.
_ALLOWED_FORMAT = frozenset("\u200c\u200d")


def _iso_timestamp(value: Any) -> Any:
    # pydantic also reads "1700000000" or "2026-01-01T00:00_00" as times, and Postgres reads
    # neither: accept the ISO-8601 text every source sends, so raw stays castable.
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_TIMESTAMP.fullmatch(value)):
        return value
    raise ValueError("must be an ISO-8601 timestamp such as 2026-11-27T12:00:00Z")


def _utc_since_genesis(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must carry a timezone (ISO-8601 with Z or +00:00)")
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC datetime
        raise ValueError("timestamp is out of range once converted to UTC") from None
    if value < EARLIEST_TIMESTAMP:
        raise ValueError(
            f"{value.isoformat()} is before {EARLIEST_TIMESTAMP.date()} (Bitcoin's genesis "
            "block); no coin was quoted then"
        )
    return value


def _bad_character(ch: str) -> bool:
    """A character no source sends: control, surrogate, line or paragraph separator, format."""
    category = unicodedata.category(ch)
    return category in ("Cc", "Cs", "Zl", "Zp") or (category == "Cf" and ch not in _ALLOWED_FORMAT)


def _ticker_character(ch: str) -> bool:
    """A letter, digit, symbol or allowed punctuation (markup characters are refused apart)."""
    return ch in _SYMBOL_PUNCTUATION or unicodedata.category(ch)[0] in "LMNS"


def _name_character(ch: str) -> bool:
    """A letter, digit or symbol: what a name must hold at least one of."""
    return unicodedata.category(ch)[0] in "LNS"


def _ascii_class(rule: Callable[[str], bool]) -> str:
    """A regex character class of the ASCII characters ``rule`` accepts. Nearly every name and
    ticker is ASCII, and one regex call checks it where the per-character rule costs a call
    per character: the loader validates thousands of messages a second."""
    return "[" + "".join(re.escape(chr(i)) for i in range(128) if rule(chr(i))) + "]"


_ASCII_BAD = re.compile(_ascii_class(_bad_character))
_ASCII_TICKER = re.compile(
    _ascii_class(lambda ch: _ticker_character(ch) and ch not in _TICKER_MARKUP) + "+"
)
_ASCII_NAME_CHARACTER = re.compile(_ascii_class(_name_character))
# Nearly every name in one call: ASCII with no bad character, a name character, and neither
# of the characters every _MARKUP match starts with. Whatever else passes every check below.
_PLAIN_ASCII_NAME = re.compile(
    f"(?=.*{_ASCII_NAME_CHARACTER.pattern})"
    + _ascii_class(lambda ch: not _bad_character(ch) and ch not in "<&")
    + "+"
)


def _first(value: str, ascii_class: re.Pattern[str], rule: Callable[[str], bool]) -> str | None:
    """The first character of ``value`` that ``rule`` accepts, or None; ``ascii_class`` is the
    rule's :func:`_ascii_class`, which answers for ASCII text in one call."""
    if value.isascii():
        found = ascii_class.search(value)
        return None if found is None else found.group()
    return next((ch for ch in value if rule(ch)), None)


def _bad_characters(value: str) -> str | None:
    """Why ``value`` holds characters no source sends (control, format, surrogate), or None."""
    bad = _first(value, _ASCII_BAD, _bad_character)
    if bad is None:
        return None
    return f"must not contain the control or formatting character U+{ord(bad):04X}"


def _symbol(value: str) -> str:
    if value.isascii() and _ASCII_TICKER.fullmatch(value):
        return value
    for ch in value:
        if not _ticker_character(ch):
            raise ValueError(
                f"character U+{ord(ch):04X} is not allowed in a ticker (letters, digits, "
                "symbols and $.-_+*!@#%/:^~|=()[] only)"
            )
        if ch in _TICKER_MARKUP:
            raise ValueError(f"character {ch!r} is not allowed in a ticker")
    return value


def _name(value: str) -> str:
    if _PLAIN_ASCII_NAME.fullmatch(value):
        return value
    if (why := _bad_characters(value)) is not None:
        raise ValueError(why)
    if _MARKUP.search(value):
        raise ValueError("must not contain HTML markup (a tag or a character reference)")
    if _first(value, _ASCII_NAME_CHARACTER, _name_character) is None:
        raise ValueError("must contain at least one letter, digit or symbol")
    return value


def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError("must be letters, digits and - _ . ~ only (a URL path segment)")
    return value


# Lax parsing of what the before-validator let through: once a validator has handled it, an
# ISO string is no longer a datetime to strict mode.
Timestamp = Annotated[
    datetime,
    Field(strict=False),
    BeforeValidator(_iso_timestamp),
    AfterValidator(_utc_since_genesis),
]
CoinId = Annotated[int, Field(gt=0, lt=_MAX_INT)]
Rank = Annotated[int, Field(gt=0, lt=_MAX_INT)]
Count = Annotated[int, Field(ge=0, lt=_MAX_INT)]
Symbol = Annotated[str, Field(min_length=1, max_length=32), AfterValidator(_symbol)]
Name = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_name)]
Slug = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_slug)]
Currency = Annotated[str, Field(pattern=r"^[A-Z0-9]{2,10}$")]
Price = Annotated[float, Field(gt=0, le=_MAX_PRICE, allow_inf_nan=False)]
Money = Annotated[float, Field(ge=0, le=_MAX_MONEY, allow_inf_nan=False)]  # 0 is a value
Supply = Annotated[float, Field(ge=0, le=_MAX_SUPPLY, allow_inf_nan=False)]  # 0 is a value
Percent = Annotated[float, Field(ge=-_MAX_PERCENT, le=_MAX_PERCENT, allow_inf_nan=False)]
Dominance = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]


def _not_after(when: datetime | None, limit: datetime, what: str, judge: str) -> None:
    if when is not None and when > limit + MAX_CLOCK_SKEW:
        raise ValueError(
            f"{what} {when.isoformat()} is in the future: more than "
            f"{MAX_CLOCK_SKEW.total_seconds() / 60:g} minutes after {judge}. Check the clock "
            "of the machine that stamped it"
        )


def _judging_clock(info: ValidationInfo) -> datetime | None:
    """The clock of whoever validates (``context={"now": ...}``); None checks no clock."""
    return info.context.get("now") if isinstance(info.context, dict) else None


_STRICT = ConfigDict(strict=True, extra="ignore", frozen=True)


class CoinFields(BaseModel):
    """What CoinMarketCap says about a coin, shared by quote messages and listings rows."""

    model_config = _STRICT

    symbol: Symbol
    name: Name
    slug: Slug
    cmc_rank: Rank | None = None
    num_market_pairs: Count | None = None
    circulating_supply: Supply | None = None
    total_supply: Supply | None = None
    max_supply: Supply | None = None
    infinite_supply: bool | None = None


class QuoteFigures(BaseModel):
    """One coin's figures in one currency, shared by quote messages and listings rows."""

    model_config = _STRICT

    price: Price
    volume_24h: Money | None = None
    volume_change_24h: Percent | None = None
    percent_change_1h: Percent | None = None
    percent_change_24h: Percent | None = None
    percent_change_7d: Percent | None = None
    percent_change_30d: Percent | None = None
    market_cap: Money | None = None
    market_cap_dominance: Dominance | None = None
    fully_diluted_market_cap: Money | None = None


class QuoteMessage(QuoteFigures, CoinFields):
    """One coin's quote in one currency at one source time (``last_updated``)."""

    schema_version: Literal[1]
    source: Source
    coin_id: CoinId
    quote_currency: Currency
    last_updated: Timestamp
    fetched_at: Timestamp

    @model_validator(mode="after")
    def _no_future_times(self, info: ValidationInfo) -> QuoteMessage:
        _not_after(self.last_updated, self.fetched_at, "last_updated", "fetched_at")
        if (now := _judging_clock(info)) is not None:
            _not_after(self.fetched_at, now, "fetched_at", "the loader's clock")
        return self

    @property
    def key(self) -> bytes:
        """The Kafka key: the coin id as a string."""
        return str(self.coin_id).encode()

    def to_bytes(self) -> bytes:
        """The Kafka value: UTF-8 JSON."""
        return self.model_dump_json().encode()


class ListingQuote(QuoteFigures):
    """``quote.<CUR>`` of one listings coin: the quote message's figures, same bounds."""

    last_updated: Timestamp | None = None


class ListingCoin(CoinFields):
    """One coin of a ``listings/latest`` reply, as ``raw.crypto_listings`` may store it.

    Validate with ``parse_listing_coin``, which checks the snapshot currency's quote and that
    no time is after the snapshot.
    """

    id: CoinId
    date_added: Timestamp | None = None
    last_updated: Timestamp | None = None
    quote: dict[str, Any]


class FxRate(BaseModel):
    """One day's reference rate: units of ``currency`` per 1 USD, as ``raw.fx_rates`` stores it."""

    model_config = ConfigDict(strict=True, frozen=True)

    as_of_date: date
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    # Decimal as the FX client parses it; bounded so the staging cast to double precision
    # neither overflows (a 401-digit rate) nor underflows to zero.
    rate_per_usd: Annotated[
        Decimal, Field(strict=False, ge=Decimal("1e-9"), le=Decimal("1e12"), allow_inf_nan=False)
    ]
    source: Literal["frankfurter", "simulator"]

    @model_validator(mode="after")
    def _plausible_date(self, info: ValidationInfo) -> FxRate:
        if self.as_of_date < EARLIEST_FX_DATE:
            raise ValueError(
                f"as_of_date {self.as_of_date} is before {EARLIEST_FX_DATE}, the first "
                "reference rate"
            )
        now = _judging_clock(info)
        if now is not None and self.as_of_date > (now + MAX_CLOCK_SKEW).date() + timedelta(1):
            raise ValueError(f"as_of_date {self.as_of_date} is in the future")
        return self


class InvalidMessage(ValueError):
    """A Kafka value that is not a valid ``QuoteMessage``; ``reason`` says why, for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_quote_message(value: bytes | None, now: datetime | None = None) -> QuoteMessage:
    """Decode and validate one Kafka value, or raise ``InvalidMessage`` with a readable reason.

    ``now`` is the loader's clock: a ``fetched_at`` more than ``MAX_CLOCK_SKEW`` after it is
    refused. The producer passes none (it has just stamped ``fetched_at`` itself).
    """
    if value is None or len(value) == 0:
        raise InvalidMessage("empty message (null or zero-length value)")
    if len(value) > MAX_MESSAGE_BYTES:
        raise InvalidMessage(
            f"message of {len(value):,} bytes is larger than the {MAX_MESSAGE_BYTES:,} bytes a "
            f"quote may take; only its first {REJECTED_PAYLOAD_BYTES:,} bytes are kept"
        )
    context = {"now": now}
    try:
        # Fast path: nearly every message is valid, and one pass over the bytes decides that.
        # Only a failure pays for the slower steps below, which say exactly what is wrong.
        return QuoteMessage.model_validate_json(value, context=context)
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
        return QuoteMessage.model_validate_json(text, context=context)
    except ValidationError as e:
        raise InvalidMessage(_describe(e, "invalid quote")) from None


def parse_listing_coin(
    coin: dict[str, Any], quote_currency: str, snapshot_at: datetime
) -> tuple[ListingCoin, str]:
    """Validate one listings coin; returns it with the JSON text to store, or raises
    ``InvalidMessage``.

    The text is the coin as received, so ``raw`` keeps everything the source sent; it is
    stored only when every field the staging model casts is valid under the quote rules.
    """
    try:
        text = json.dumps(coin, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")  # a lone surrogate: neither jsonb nor text can hold it
    except (ValueError, UnicodeEncodeError, RecursionError) as e:
        raise InvalidMessage(f"not storable as JSON: {e}"[:300]) from None
    if "\\u0000" in text:
        raise InvalidMessage("holds the NUL character, which PostgreSQL cannot store")
    context = {"now": snapshot_at}
    try:
        listing = ListingCoin.model_validate_json(text, context=context)
    except ValidationError as e:
        raise InvalidMessage(_describe(e, "invalid listing")) from None
    quote = listing.quote.get(quote_currency)
    if not isinstance(quote, dict):
        raise InvalidMessage(f"invalid listing: no quote in {quote_currency}")
    try:
        figures = ListingQuote.model_validate_json(json.dumps(quote), context=context)
    except ValidationError as e:
        raise InvalidMessage(_describe(e, f"invalid listing quote.{quote_currency}")) from None
    for what, when in (
        ("last_updated", listing.last_updated),
        (f"quote.{quote_currency}.last_updated", figures.last_updated),
        ("date_added", listing.date_added),
    ):
        try:
            _not_after(when, snapshot_at, what, "the snapshot time")
        except ValueError as e:
            raise InvalidMessage(f"invalid listing: {e}") from None
    return listing, text


def validate_fx_rate(
    as_of_date: date, currency: str, rate_per_usd: Decimal, source: str, now: datetime
) -> FxRate:
    """One FX rate as ``raw.fx_rates`` may store it, or ``InvalidMessage`` saying why not."""
    try:
        return FxRate.model_validate(
            {
                "as_of_date": as_of_date,
                "currency": currency,
                "rate_per_usd": rate_per_usd,
                "source": source,
            },
            context={"now": now},
        )
    except ValidationError as e:
        raise InvalidMessage(_describe(e, "invalid FX rate")) from None


def _brief(value: Any) -> str:
    # Bounded and never recursive: the value is hostile input headed for a log and a table.
    if isinstance(value, dict | list):
        return f"<a JSON {'object' if isinstance(value, dict) else 'array'}>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(error: ValidationError, what: str) -> str:
    parts = []
    for err in error.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    more = error.error_count() - len(parts)
    return f"{what}: " + "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


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
