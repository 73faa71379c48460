"""The quote message contract: what the producer builds is what the loader accepts."""

from __future__ import annotations

import json
import math

import pytest

from moonwatch.messages import InvalidMessage, parse_quote_message
from tests.factories import quote_message


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
        (_value(name="bad\u0000name"), "NUL"),
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
