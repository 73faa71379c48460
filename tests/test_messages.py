"""The quote message contract: what the producer builds is what the loader accepts."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moonwatch.messages import (
    MAX_CLOCK_SKEW,
    InvalidMessage,
    build_quote_message,
    parse_listing_coin,
    parse_quote_message,
    validate_fx_rate,
)
from tests.factories import BASE_TIME, coin_object, listing_coin, quote_message


def _value(**changes: object) -> bytes:
    payload = json.loads(quote_message().to_bytes())
    payload.update(changes)
    return json.dumps(payload).encode()


def test_message_round_trip_keeps_every_contract_field() -> None:
    message = quote_message(coin_id=1027, price=3000.5)
    parsed = parse_quote_message(message.to_bytes())
    assert parsed == message
    assert message.key == b"1027"
    fields = json.loads(message.to_bytes())
    for name in (
        "schema_version",
        "source",
        "coin_id",
        "symbol",
        "name",
        "slug",
        "cmc_rank",
        "circulating_supply",
        "total_supply",
        "max_supply",
        "quote_currency",
        "price",
        "volume_24h",
        "volume_change_24h",
        "percent_change_1h",
        "percent_change_24h",
        "percent_change_7d",
        "percent_change_30d",
        "market_cap",
        "market_cap_dominance",
        "fully_diluted_market_cap",
        "last_updated",
        "fetched_at",
    ):
        assert name in fields, name


def test_message_null_numeric_fields_are_kept_as_null() -> None:
    message = quote_message(volume_24h=None, market_cap=None, percent_change_30d=None)
    assert message.volume_24h is None and message.market_cap is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty"),
        (None, "empty"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (_value(schema_version=99), "unknown schema_version 99"),
        (_value(price="12.5"), "price"),
        (_value(price=-1), "price"),
        (_value(price=0), "price"),
        (_value(price=1e300), "price"),
        (_value(coin_id="1"), "coin_id"),
        (_value(market_cap=1e30), "market_cap"),
        (_value(last_updated="2026-11-27T12:00:00"), "timezone"),
        (_value(name="bad\u0000name"), "U\\+0000"),
        (json.dumps({"schema_version": 1}).encode(), "invalid quote"),
    ],
)
def test_message_poison_is_rejected_with_a_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        parse_quote_message(value)


def test_message_nan_and_infinity_are_rejected() -> None:
    for bad in ("NaN", "Infinity", "-Infinity"):
        text = quote_message().to_bytes().decode().replace('"price":50000.0', f'"price":{bad}')
        assert bad in text
        with pytest.raises(InvalidMessage, match="price"):
            parse_quote_message(text.encode())
    assert math.isfinite(quote_message().price)


def _at(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def test_message_last_updated_from_the_future_is_rejected() -> None:
    fetched = BASE_TIME + timedelta(seconds=2)
    with pytest.raises(InvalidMessage, match=r"last_updated 2099-01-01.* is in the future"):
        parse_quote_message(_value(last_updated="2099-01-01T00:00:00Z"))
    late = fetched + MAX_CLOCK_SKEW + timedelta(seconds=1)
    with pytest.raises(InvalidMessage, match="more than 5 minutes after fetched_at"):
        parse_quote_message(_value(last_updated=_at(late)))
    # Within the skew: a source clock a little ahead of the producer's is ordinary drift.
    within = fetched + MAX_CLOCK_SKEW
    assert parse_quote_message(_value(last_updated=_at(within))).last_updated == within


def test_message_fetched_at_ahead_of_the_loaders_clock_is_rejected() -> None:
    value = _value(last_updated="2099-01-01T00:00:00Z", fetched_at="2099-01-01T00:00:05Z")
    assert parse_quote_message(value).fetched_at.year == 2099  # consistent on its own
    with pytest.raises(InvalidMessage, match=r"fetched_at 2099.* after the loader's clock"):
        parse_quote_message(value, now=datetime.now(UTC))
    now = BASE_TIME + timedelta(seconds=2) - MAX_CLOCK_SKEW
    assert parse_quote_message(_value(), now=now).fetched_at == now + MAX_CLOCK_SKEW


@pytest.mark.parametrize(
    "field", ["last_updated", "fetched_at"], ids=["last_updated", "fetched_at"]
)
def test_message_timestamps_before_bitcoin_are_rejected(field: str) -> None:
    with pytest.raises(InvalidMessage, match="before 2009-01-03"):
        parse_quote_message(_value(**{field: "2008-12-31T23:59:59Z"}))
    assert parse_quote_message(_value(last_updated="2009-01-03T00:00:00Z"))


@pytest.mark.parametrize("at", ["1700000000", "2026-11-27T12:00:00_00", "yesterday-ish", ""])
def test_message_timestamps_must_be_iso_text(at: str) -> None:
    with pytest.raises(InvalidMessage, match="ISO-8601"):
        parse_quote_message(_value(last_updated=at))


def test_message_zero_market_cap_volume_and_null_supply_are_values() -> None:
    # CoinMarketCap's answer for a coin whose supply it has not verified.
    message = parse_quote_message(
        _value(
            market_cap=0,
            fully_diluted_market_cap=0,
            volume_24h=0,
            market_cap_dominance=0,
            circulating_supply=None,
            total_supply=0,
            max_supply=None,
        )
    )
    assert (message.market_cap, message.volume_24h, message.circulating_supply) == (0, 0, None)
    for field in ("market_cap", "volume_24h", "total_supply", "fully_diluted_market_cap"):
        with pytest.raises(InvalidMessage, match=field):
            parse_quote_message(_value(**{field: -1}))


REAL_SYMBOLS = ["BTC", "USDC.E", "$WIF", "1INCH", "BTC.B", "WBTC-E", "ÉTÉ", "A_B", "狗狗", "X+"]
HOSTILE_SYMBOLS = ["<b>", 'A"B', "A'B", "A&B", "A B", "A\tB", "A`B", "X" * 33, "\u202eBTC"]


@pytest.mark.parametrize("symbol", REAL_SYMBOLS)
def test_message_real_tickers_are_accepted(symbol: str) -> None:
    assert parse_quote_message(_value(symbol=symbol)).symbol == symbol


@pytest.mark.parametrize("symbol", HOSTILE_SYMBOLS)
def test_message_tickers_with_markup_or_control_characters_are_rejected(symbol: str) -> None:
    with pytest.raises(InvalidMessage, match="symbol"):
        parse_quote_message(_value(symbol=symbol))


REAL_NAMES = [
    "Bitcoin Cash",
    "Wrapped Bitcoin (Portal)",
    "1inch Network",
    "USD.e Coin",
    "Crypto.com Coin",
    "Ünïcødé — 漢字 🚀",
    "Bread & Butter",
    "I <3 Crypto",
    "dogwifhat",
    "👨‍🚀",  # a zero-width joiner sequence
]
HOSTILE_NAMES = [
    '<iframe srcdoc="<script>alert(1)</script>">',
    "Bit<b>coin</b>",
    "&#60;script&#62;",
    "&lt;b&gt;",
    "tab\there",
    "new\nline",
    "right\u202eto-left",
    "zero\u200bwidth",
    "...",
    "X" * 129,
]


@pytest.mark.parametrize("name", REAL_NAMES)
def test_message_real_coin_names_are_accepted(name: str) -> None:
    assert parse_quote_message(_value(name=name)).name == name


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_message_names_with_markup_or_control_characters_are_rejected(name: str) -> None:
    with pytest.raises(InvalidMessage, match="name"):
        parse_quote_message(_value(name=name))


def _verdict(**fields: str) -> str:
    try:
        parse_quote_message(_value(**fields))
    except InvalidMessage as e:
        return str(e)
    return "accepted"


@pytest.mark.parametrize("code", range(128))
def test_message_ascii_names_and_tickers_get_the_verdict_of_the_per_character_rules(
    code: int,
) -> None:
    # ASCII text is checked by one regex built from the per-character rules; text with any
    # other character goes through those rules one character at a time. A trailing
    # character that no rule cares about (é in a ticker is a letter like A; a no-break space
    # in a name is neither bad nor a letter) sends the same text down the other path: the
    # verdicts, reason included, must match for every ASCII character.
    ch = chr(code)
    for symbol in (f"A{ch}B", ch):
        assert _verdict(symbol=symbol) == _verdict(symbol=symbol + "\u00e9"), repr(symbol)
    for name in (f"A{ch}B", ch, f"{ch}{ch}"):
        assert _verdict(name=name) == _verdict(name=name + "\u00a0"), repr(name)


@settings(max_examples=400, deadline=None)
@given(st.text(st.characters(min_codepoint=0, max_codepoint=127), min_size=1, max_size=40))
def test_message_any_ascii_name_gets_the_verdict_of_the_per_character_rules(name: str) -> None:
    # Most ASCII names are accepted by one regex before the other checks run (markup needs a
    # "<" or an "&"): it must accept nothing the per-character rules, which the no-break
    # space sends the same text to, would refuse.
    assert _verdict(name=name) == _verdict(name=name + "\u00a0"), repr(name)


@pytest.mark.parametrize("slug", ["bitcoin", "usd-coin", "1inch", "crypto.com-coin", "a_b"])
def test_message_real_slugs_are_accepted(slug: str) -> None:
    assert parse_quote_message(_value(slug=slug)).slug == slug


@pytest.mark.parametrize("slug", ["<x>", "a b", "a/b", 'a"b', "a?b", "a\nb"])
def test_message_slugs_that_are_no_path_segment_are_rejected(slug: str) -> None:
    with pytest.raises(InvalidMessage, match="slug"):
        parse_quote_message(_value(slug=slug))


SNAPSHOT_AT = BASE_TIME + timedelta(seconds=30)


def test_listing_coin_with_the_quote_rules_is_stored_as_received() -> None:
    coin = listing_coin(1)
    listing, text = parse_listing_coin(coin, "USD", SNAPSHOT_AT)
    assert listing.id == 1 and json.loads(text) == coin


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"cmc_rank": 3_000_000_000}, "cmc_rank"),
        ({"num_market_pairs": 2**31}, "num_market_pairs"),
        ({"date_added": "yesterday-ish"}, "date_added.*ISO-8601"),
        ({"date_added": "1999-01-01T00:00:00.000Z"}, "date_added.*before 2009-01-03"),
        ({"last_updated": "2099-01-01T00:00:00.000Z"}, "last_updated.*in the future"),
        ({"circulating_supply": -1}, "circulating_supply"),
        ({"infinite_supply": "no"}, "infinite_supply"),
        ({"symbol": "<img src=x>"}, "symbol"),
        ({"name": "Bit\u0000coin"}, "NUL"),
        ({"id": 2**31}, "id"),
        ({"quote": {"EUR": {"price": 1.0}}}, "no quote in USD"),
    ],
)
def test_listing_coin_that_staging_could_not_read_is_rejected(
    change: dict[str, object], reason: str
) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        parse_listing_coin({**listing_coin(1), **change}, "USD", SNAPSHOT_AT)


@pytest.mark.parametrize(
    ("figures", "reason"),
    [
        ({"price": 10**400}, "price"),
        ({"price": 0}, "price"),
        ({"market_cap": float("nan")}, "not storable as JSON"),
        ({"percent_change_24h": 1e300}, "percent_change_24h"),
        ({"last_updated": "2099-01-01T00:00:00Z"}, "in the future"),
    ],
)
def test_listing_quote_follows_the_quote_contract(figures: dict[str, object], reason: str) -> None:
    coin = listing_coin(1)
    coin["quote"]["USD"].update(figures)
    with pytest.raises(InvalidMessage, match=reason):
        parse_listing_coin(coin, "USD", SNAPSHOT_AT)


def test_listing_zero_market_cap_and_null_supply_are_stored() -> None:
    coin = {**listing_coin(1), "circulating_supply": None, "total_supply": None}
    coin["quote"]["USD"].update(market_cap=0, volume_24h=0, fully_diluted_market_cap=0)
    assert parse_listing_coin(coin, "USD", SNAPSHOT_AT)[0].circulating_supply is None


NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("as_of", "currency", "rate", "reason"),
    [
        (date(2026, 12, 1), "EUR", Decimal("1" + "0" * 400), "rate_per_usd"),
        (date(2026, 12, 1), "EUR", Decimal("1e-400"), "rate_per_usd"),
        (date(2026, 12, 1), "EUR", Decimal("NaN"), "rate_per_usd"),
        (date(1900, 1, 1), "EUR", Decimal("0.9"), "before 1999-01-04"),
        (date(2099, 1, 1), "EUR", Decimal("0.9"), "in the future"),
        (date(2026, 12, 1), "eu<", Decimal("0.9"), "currency"),
    ],
)
def test_fx_rate_that_staging_could_not_read_is_rejected(
    as_of: date, currency: str, rate: Decimal, reason: str
) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        validate_fx_rate(as_of, currency, rate, "simulator", NOW)
    assert validate_fx_rate(date(2026, 12, 1), "SEK", Decimal("10.4"), "simulator", NOW)


def test_producer_skips_a_coin_whose_source_time_is_in_the_future() -> None:
    coin = coin_object()
    coin["quote"]["USD"]["last_updated"] = "2099-01-01T00:00:00Z"
    with pytest.raises(InvalidMessage, match="in the future"):
        build_quote_message(coin, "USD", "coinmarketcap", BASE_TIME)
