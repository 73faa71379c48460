"""The loader's two steps against the real Postgres (``prepare_batch`` on the consuming thread,
``write_prepared_batch`` on the writer thread): the COPY text stores every message exactly as
validated, and a batch holding one quote twice keeps the lowest offset.

Tabs, newlines and control characters no longer pass the contract (see test_messages), so the
names here exercise what still may: backslashes, COPY's markers and any language's letters."""

from __future__ import annotations

import gc
import json

import psycopg
import pytest

from moonwatch.kafka import KafkaRecord
from moonwatch.messages import QuoteMessage, build_quote_message
from moonwatch.warehouse import quotes
from moonwatch.warehouse.quotes import prepare_batch, write_prepared_batch
from tests.factories import BASE_TIME, coin_object, quote_message

pytestmark = pytest.mark.integration

TRICKY_NAMES = [
    ("BS", "back\\slash", "a-b"),  # COPY text's escape character
    ("NULL", "\\N", "n.a"),  # COPY's NULL marker, as plain text
    ("DOT", "\\. end", "end-of-data"),  # COPY's end-of-data marker, as plain text
    ("QUO", 'say "hi" \\"', "u0041-not-an-escape"),
    ("ÉTÉ", "Ünïcødé — 漢字 🚀", "ß~nbsp"),
]


def _tricky(coin_id: int, symbol: str, name: str, slug: str) -> QuoteMessage:
    coin = {**coin_object(coin_id), "symbol": symbol, "name": name, "slug": slug}
    return build_quote_message(coin, "USD", "simulator", BASE_TIME)


def test_load_stores_names_with_backslashes_tabs_and_unicode_exactly(
    warehouse: psycopg.Connection,
) -> None:
    messages = [_tricky(100 + i, *names) for i, names in enumerate(TRICKY_NAMES)]
    records = [KafkaRecord("quotes", 0, i, b"k", m.to_bytes()) for i, m in enumerate(messages)]
    with warehouse.transaction():
        result = write_prepared_batch(warehouse, prepare_batch(records))
    assert (result.inserted, result.duplicates, result.rejected) == (len(messages), 0, 0)
    rows = warehouse.execute(
        "select coin_id, quote_currency, last_updated, message, kafka_offset"
        " from raw.crypto_quotes order by kafka_offset"
    ).fetchall()
    for (coin_id, currency, last_updated, stored, offset), message in zip(
        rows, messages, strict=True
    ):
        assert stored == json.loads(message.model_dump_json())  # the validated model, as is
        assert (stored["symbol"], stored["name"], stored["slug"]) == TRICKY_NAMES[offset]
        assert (coin_id, currency, last_updated) == (
            message.coin_id,
            message.quote_currency,
            message.last_updated,
        )


def test_load_keeps_the_lowest_offset_when_a_batch_holds_one_quote_twice(
    warehouse: psycopg.Connection,
) -> None:
    first, again = quote_message(1, price=10.0), quote_message(1, price=11.0)
    other = quote_message(2)
    records = [
        KafkaRecord("quotes", 0, 7, b"1", again.to_bytes()),
        KafkaRecord("quotes", 0, 5, b"1", first.to_bytes()),
        KafkaRecord("quotes", 0, 6, b"2", other.to_bytes()),
    ]
    with warehouse.transaction():
        result = write_prepared_batch(warehouse, prepare_batch(records))
    assert (result.inserted, result.duplicates) == (2, 1)
    stored = warehouse.execute(
        "select kafka_offset, (message->>'price')::float from raw.crypto_quotes where coin_id = 1"
    ).fetchall()
    assert stored == [(5, 10.0)]


def test_prepare_batch_pauses_the_garbage_collector_only_while_it_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = [KafkaRecord("quotes", 0, 0, b"1", quote_message(1).to_bytes())]
    enabled_while_validating = []

    def spy(batch: list[KafkaRecord], now: object = None) -> object:
        enabled_while_validating.append(gc.isenabled())
        return real_split_valid(batch, now)

    real_split_valid = quotes.split_valid
    monkeypatch.setattr(quotes, "split_valid", spy)
    assert gc.isenabled()
    assert prepare_batch(records).valid == 1
    assert enabled_while_validating == [False]
    assert gc.isenabled()

    def broken(batch: list[KafkaRecord], now: object = None) -> object:
        raise RuntimeError("validation blew up")

    monkeypatch.setattr(quotes, "split_valid", broken)
    with pytest.raises(RuntimeError, match="blew up"):
        prepare_batch(records)
    assert gc.isenabled()  # resumed after a failed batch too

    monkeypatch.setattr(quotes, "split_valid", real_split_valid)
    gc.disable()  # paused by its owner, who must find it still paused
    try:
        prepare_batch(records)
        assert not gc.isenabled()
    finally:
        gc.enable()
