"""Fuzzing the loader's way in: Kafka values → parse_quote_message / split_valid → Postgres.

Whatever bytes arrive, the loader either accepts a valid ``QuoteMessage`` or rejects the value
with a reason (``InvalidMessage``); nothing else may escape, because one unexpected exception
would stall the consumer on that offset for good. The integration test then pushes a batch of
poison and valid values through the loader's two steps (``prepare_batch``, then
``write_prepared_batch``) into the real warehouse: one transaction, every value accounted for,
no COPY/jsonb failure.
"""

from __future__ import annotations

import base64
import json
import os
import random
import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moonwatch.kafka import KafkaRecord
from moonwatch.messages import (
    MAX_MESSAGE_BYTES,
    REJECTED_PAYLOAD_BYTES,
    InvalidMessage,
    QuoteMessage,
    parse_quote_message,
)
from moonwatch.warehouse.quotes import prepare_batch, split_valid, write_prepared_batch
from tests.factories import quote_message
from tests.security.strategies import Poison, dumps, seeds

FUZZ = settings(
    max_examples=int(os.environ.get("SECURITY_FUZZ_EXAMPLES", "10000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAX_REASON = 1000
VALID = quote_message(1027, price=3000.0).to_bytes()
AT = b'"last_updated":"2026-11-27T12:00:00Z"'
DEEP_400 = b"[" * 400 + b"]" * 400
DEEP_100K = b"[" * 100_000 + b"]" * 100_000


def check(value: bytes | None) -> QuoteMessage | None:
    """The loader's contract for one value: a clean message, or InvalidMessage with a reason."""
    try:
        message = parse_quote_message(value)
    except InvalidMessage as e:
        assert e.reason.strip(), "a rejection must say why"
        assert len(e.reason) <= MAX_REASON, "a rejection reason must stay readable"
        return None
    stored = message.model_dump_json()
    stored.encode("utf-8")  # no lone surrogates: Postgres text and jsonb need valid UTF-8
    assert "\\u0000" not in stored and "\x00" not in stored  # jsonb refuses U+0000
    assert parse_quote_message(message.to_bytes()) == message
    return message


def records(values: list[bytes | None], topic: str = "fuzz") -> list[KafkaRecord]:
    return [KafkaRecord(topic, 0, offset, b"k", value) for offset, value in enumerate(values)]


@FUZZ
@given(st.binary(max_size=400) | st.text(max_size=200).map(str.encode) | st.none())
def test_random_bytes_are_rejected_with_a_reason(value: bytes | None) -> None:
    check(value)


@FUZZ
@given(seeds)
def test_mutated_valid_messages_parse_or_are_rejected(rng: random.Random) -> None:
    poison = Poison(rng)
    valid = VALID if poison.chance(0.2) else dumps(poison.message())
    check(poison.mutate(valid))


def test_json_with_random_types_per_field_parses_or_is_rejected() -> None:
    seen = {"valid": 0, "rejected": 0}

    @FUZZ
    @given(seeds)
    def run(rng: random.Random) -> None:
        poison = Poison(rng)
        values = [dumps(poison.typed_message()) for _ in range(rng.randint(1, 3))]
        for value in values:
            check(value)
        valid, rejected = split_valid(records(values))
        assert len(valid) + len(rejected) == len(values)
        assert sorted(r.offset for r, _ in valid + rejected) == list(range(len(values)))
        assert all(reason.strip() for _, reason in rejected)
        seen["valid"] += len(valid)
        seen["rejected"] += len(rejected)

    run()
    # Not vacuous: the generator reaches both outcomes often.
    total = seen["valid"] + seen["rejected"]
    assert seen["valid"] > total / 10 and seen["rejected"] > total / 10, seen


HANDPICKED: dict[str, tuple[bytes | None, bool]] = {
    # name: (value, accepted?)
    "valid": (VALID, True),
    "null value": (None, False),
    "empty value": (b"", False),
    "not utf-8": (b"\xff\xfe" + VALID, False),
    "utf-8 BOM": (b"\xef\xbb\xbf" + VALID, False),
    "encoded lone surrogate": (VALID.replace(b'"Ethereum"', b'"Eth\xed\xa0\x80"'), False),
    "escaped lone surrogate in name": (VALID.replace(b'"Ethereum"', b'"Eth\\ud800"'), False),
    "escaped NUL in name": (VALID.replace(b'"Ethereum"', b'"Eth\\u0000"'), False),
    "raw NUL byte in name": (VALID.replace(b'"Ethereum"', b'"Eth\x00"'), False),
    "escaped NUL in an ignored field": (VALID[:-1] + b',"junk":"a\\u0000b"}', True),
    "deep nesting in an ignored field": (VALID[:-1] + b',"junk":' + DEEP_400 + b"}", False),
    "deep nesting past the recursion limit": (b'{"a":' + DEEP_100K + b"}", False),
    "huge int price": (VALID.replace(b'"price":3000.0', b'"price":' + b"9" * 5000), False),
    "big int coin id": (VALID.replace(b'"coin_id":1027', b'"coin_id":' + b"9" * 30), False),
    "NaN price": (VALID.replace(b'"price":3000.0', b'"price":NaN'), False),
    "Infinity market cap": (VALID.replace(b'"market_cap":', b'"market_cap":Infinity,"x":'), False),
    "year 1 with an offset": (
        VALID.replace(AT, b'"last_updated":"0001-01-01T00:00:00+01:00"'),
        False,
    ),
    "year 1 UTC, before any coin": (
        VALID.replace(AT, b'"last_updated":"0001-01-01T00:00:00Z"'),
        False,
    ),
    "last_updated in 2099": (VALID.replace(AT, b'"last_updated":"2099-01-01T00:00:00Z"'), False),
    "huge schema_version string": (b'{"schema_version":"' + b"x" * 100_000 + b'"}', False),
    "deep schema_version": (b'{"schema_version":' + b"[" * 900 + b"]" * 900 + b"}", False),
    "emoji name": (VALID.replace(b'"Ethereum"', '"🚀 Eth"'.encode()), True),
    "right-to-left override in name": (VALID.replace(b'"Ethereum"', '"\u202eEth"'.encode()), False),
    "markup in name": (VALID.replace(b'"Ethereum"', b'"<iframe srcdoc=x>"'), False),
    "markup in symbol": (VALID.replace(b'"ETH"', b'"<b>"'), False),
}


def test_handpicked_poison_values_parse_as_expected() -> None:
    for needle in (AT, b'"Ethereum"', b'"price":3000.0', b'"coin_id":1027', b'"market_cap":'):
        assert needle in VALID, needle  # the replacements above apply
    for name, (value, accepted) in HANDPICKED.items():
        assert (check(value) is not None) == accepted, name


def _load(conn: psycopg.Connection, values: list[bytes | None]) -> int:
    """Load ``values`` in one transaction and check that every one is accounted for."""
    topic = f"fuzz-{uuid.uuid4().hex[:10]}"
    batch = [
        KafkaRecord(topic, offset % 3, offset, key, value)
        for offset, (key, value) in enumerate(
            zip([b"1", None, b"\x00\xff\xed\xa0\x80 key"] * len(values), values, strict=False)
        )
    ]
    valid, rejected = split_valid(batch)
    with conn.transaction():
        result = write_prepared_batch(conn, prepare_batch(batch))
    assert result.rejected == len(rejected)
    assert result.inserted + result.duplicates == len(valid)
    assert result.inserted + result.duplicates + result.rejected == len(batch)
    stored = conn.execute(
        "select kafka_offset, message from raw.crypto_quotes where kafka_topic = %s", (topic,)
    ).fetchall()
    assert len(stored) == result.inserted
    by_offset = {r.offset: m for r, m in valid}
    for offset, message in stored:
        assert QuoteMessage.model_validate_json(json.dumps(message)) == by_offset[offset]
    refused = conn.execute(
        "select kafka_offset, message_key, message_base64, reason, message_bytes"
        " from raw.crypto_quotes_rejected where kafka_topic = %s",
        (topic,),
    ).fetchall()
    assert len(refused) == result.rejected
    original = {r.offset: r.value for r, _ in rejected}
    for offset, key, encoded, reason, size in refused:
        assert reason.strip()
        assert key is None or "\x00" not in key
        value = original[offset]
        assert size == (None if value is None else len(value))
        if value is not None and len(value) > MAX_MESSAGE_BYTES:
            value = value[:REJECTED_PAYLOAD_BYTES]  # an oversized value keeps its start only
        assert (None if encoded is None else base64.b64decode(encoded)) == value
    return len(batch)


def batch_value(poison: Poison) -> bytes | None:
    k = poison.r.randrange(5)
    if k == 0:
        return dumps(poison.message())
    if k == 1:
        return dumps(poison.typed_message())
    if k == 2:
        return poison.mutate(dumps(poison.message()))
    if k == 3:
        return poison.r.randbytes(poison.r.randint(0, 100))
    return None if poison.chance(0.5) else dumps(poison.json_value())


@pytest.mark.integration
def test_poison_and_valid_batches_load_into_postgres_without_failing(
    warehouse: psycopg.Connection,
) -> None:
    loaded = [_load(warehouse, [value for value, _ in HANDPICKED.values()])]

    @settings(
        max_examples=3,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(seeds)
    def run(rng: random.Random) -> None:
        poison = Poison(rng)
        loaded.append(_load(warehouse, [batch_value(poison) for _ in range(100)]))

    run()
    assert sum(loaded) >= 300, loaded
