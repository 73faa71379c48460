"""Consume-and-load against the real broker and the real Postgres: nothing lost, nothing doubled."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer

from moonwatch import ingest
from moonwatch.errors import BrokerError, WarehouseError
from moonwatch.ingest import consume_and_load
from moonwatch.kafka import (
    KafkaRecord,
    commit_offsets,
    consume_batches,
    open_consumer,
    produce_quotes,
    wait_for_assignment,
)
from moonwatch.messages import MAX_MESSAGE_BYTES, REJECTED_PAYLOAD_BYTES
from moonwatch.stack import broker
from moonwatch.stack.config import StackConfig
from moonwatch.warehouse.quotes import (
    LoadResult,
    PreparedBatch,
    prepare_batch,
    write_prepared_batch,
)
from tests.factories import quote_message

pytestmark = pytest.mark.integration

POISON = [
    b"",
    b"\xff\xfe not utf-8",
    b"{not json",
    b'{"schema_version": 1, "coin_id": 1}',
    b'{"schema_version": 1, "source": "simulator", "coin_id": "x"}',
    quote_message(price=1.0).to_bytes().replace(b'"price":1.0', b'"price":-5'),
    quote_message(price=1.0).to_bytes().replace(b'"price":1.0', b'"price":NaN'),
    quote_message(price=1.0).to_bytes().replace(b'"price":1.0', b'"price":Infinity'),
    quote_message(price=1.0).to_bytes().replace(b'"price":1.0', b'"price":1e308'),
    quote_message(price=1.0).to_bytes().replace(b'"schema_version":1', b'"schema_version":7'),
]


def _produce_raw(bootstrap: str, topic: str, values: list[bytes | None]) -> None:
    # Past the client's 1 MB default, so a test can put a really oversized message on the topic.
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "message.max.bytes": 16_000_000}
    )
    for value in values:
        producer.produce(topic, key=b"poison", value=value)
    assert producer.flush(15) == 0


def _keys(conn: psycopg.Connection) -> list[tuple[int, int]]:
    rows = conn.execute(
        "select coin_id, extract(epoch from last_updated)::bigint from raw.crypto_quotes"
        " order by 1, 2"
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _group() -> str:
    return f"loader-{uuid.uuid4().hex[:8]}"


def test_ingest_loads_distinct_valid_rows_and_rejects_each_poison_message(
    kafka: str, make_topic: Callable[[], str], warehouse: psycopg.Connection, warehouse_url: str
) -> None:
    topic = make_topic()
    valid = [
        quote_message(coin_id=c, minute=m, price=100.0 + m)
        for c in (1, 1027, 5426)
        for m in range(10)
    ]
    produce_quotes(valid[:15], kafka, topic)
    _produce_raw(kafka, topic, POISON)
    produce_quotes(valid[15:] + valid[:5], kafka, topic)  # five duplicates of earlier quotes

    counts = consume_and_load(kafka, topic, _group(), warehouse_url, batch_size=7, idle_s=2)

    assert (
        counts["inserted"] == 30 and counts["duplicates"] == 5 and counts["rejected"] == len(POISON)
    )
    expected = sorted((m.coin_id, int(m.last_updated.timestamp())) for m in valid)
    assert _keys(warehouse) == expected
    reasons = [
        r[0]
        for r in warehouse.execute(
            "select reason from raw.crypto_quotes_rejected order by kafka_offset"
        ).fetchall()
    ]
    assert len(reasons) == len(POISON)
    assert reasons[0].startswith("empty") and reasons[1].startswith("not UTF-8")
    assert any("unknown schema_version 7" in r for r in reasons)
    stored = warehouse.execute(
        "select message_base64 from raw.crypto_quotes_rejected where reason like 'not UTF-8%'"
    ).fetchone()[0]
    assert base64.b64decode(stored) == POISON[1]  # kept byte for byte


def test_ingest_rereading_after_restart_adds_no_rows(
    kafka: str, make_topic: Callable[[], str], warehouse: psycopg.Connection, warehouse_url: str
) -> None:
    topic = make_topic()
    produce_quotes([quote_message(coin_id=1, minute=m) for m in range(5)], kafka, topic)
    _produce_raw(kafka, topic, [b"junk"])
    first = consume_and_load(kafka, topic, _group(), warehouse_url, idle_s=2)
    # A new group re-reads the topic from the start, like a restart that lost its offsets.
    second = consume_and_load(kafka, topic, _group(), warehouse_url, idle_s=2)
    assert first["inserted"] == 5 and second["inserted"] == 0 and second["duplicates"] == 5
    assert warehouse.execute("select count(*) from raw.crypto_quotes").fetchone() == (5,)
    assert warehouse.execute("select count(*) from raw.crypto_quotes_rejected").fetchone() == (1,)


def test_ingest_crash_between_postgres_and_offset_commit_redelivers_without_duplicates(
    kafka: str, make_topic: Callable[[], str], warehouse: psycopg.Connection, warehouse_url: str
) -> None:
    topic, group = make_topic(), _group()
    produce_quotes([quote_message(coin_id=1027, minute=m) for m in range(6)], kafka, topic)
    # The loader's first life: rows committed to Postgres, then it dies before committing offsets.
    consumer = open_consumer(kafka, group, topic)
    wait_for_assignment(consumer)
    batch = next(consume_batches(consumer, batch_size=100, idle_s=2))
    with psycopg.connect(warehouse_url) as conn, conn.transaction():
        write_prepared_batch(conn, prepare_batch(batch))
    consumer.close()  # no offset commit

    after_restart = consume_and_load(kafka, topic, group, warehouse_url, idle_s=2)
    assert after_restart == {
        "inserted": 0,
        "duplicates": 6,
        "rejected": 0,
        "batches": 1,
        "partitions": [0],
    }
    assert warehouse.execute("select count(*) from raw.crypto_quotes").fetchone() == (6,)


def test_ingest_crash_before_postgres_commit_writes_nothing_and_loads_later(
    kafka: str, make_topic: Callable[[], str], warehouse: psycopg.Connection, warehouse_url: str
) -> None:
    topic, group = make_topic(), _group()
    produce_quotes([quote_message(coin_id=1, minute=m) for m in range(4)], kafka, topic)
    consumer = open_consumer(kafka, group, topic)
    wait_for_assignment(consumer)
    batch = next(consume_batches(consumer, batch_size=100, idle_s=2))
    with (
        psycopg.connect(warehouse_url) as conn,
        pytest.raises(RuntimeError),
        conn.transaction(),
    ):
        write_prepared_batch(conn, prepare_batch(batch))
        raise RuntimeError("killed mid-transaction")
    consumer.close()
    assert warehouse.execute("select count(*) from raw.crypto_quotes").fetchone() == (0,)
    assert consume_and_load(kafka, topic, group, warehouse_url, idle_s=2)["inserted"] == 4


def test_ingest_with_postgres_down_fails_clearly_and_commits_no_offset(
    kafka: str, make_topic: Callable[[], str], warehouse: psycopg.Connection, warehouse_url: str
) -> None:
    topic, group = make_topic(), _group()
    produce_quotes([quote_message(coin_id=5426, minute=m) for m in range(3)], kafka, topic)
    down_url = warehouse_url.rsplit(":", 1)[0] + ":1/moonwatch"  # nothing listens on port 1
    with pytest.raises(WarehouseError, match="Nothing was consumed") as failure:
        consume_and_load(kafka, topic, group, down_url, idle_s=2)
    password = warehouse_url.split(":")[2].split("@")[0]
    assert password not in str(failure.value)
    # After recovery the same group finds every message still waiting.
    assert consume_and_load(kafka, topic, group, warehouse_url, idle_s=2)["inserted"] == 3


def test_produce_to_a_down_broker_fails_instead_of_reporting_success() -> None:
    from moonwatch.stack.process import free_port

    with pytest.raises(BrokerError, match="1 of 1 messages were not delivered"):
        produce_quotes(
            [quote_message()], f"127.0.0.1:{free_port()}", "crypto", delivery_timeout_s=3
        )


class _Spy:
    """Wraps the loader's Postgres write and Kafka commit to see their order from outside."""

    def __init__(self, warehouse: psycopg.Connection, fail_on_call: int | None = None) -> None:
        self.warehouse = warehouse
        self.fail_on_call = fail_on_call
        self.writes = 0
        self.failed_from: int | None = None  # first offset of the batch that failed
        self.commits: list[tuple[int, int, int]] = []  # (first, last offset, rows visible)

    def write(self, conn: psycopg.Connection, batch: PreparedBatch) -> LoadResult:
        self.writes += 1
        if self.writes == self.fail_on_call:
            self.failed_from = min(r.offset for r in batch.records)
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        time.sleep(0.05)  # a slow writer: an offset commit that does not wait for it shows
        return write_prepared_batch(conn, batch)

    def commit(self, consumer: object, records: list[KafkaRecord]) -> None:
        last = max(r.offset for r in records)
        (visible,) = self.warehouse.execute(
            "select count(*) from raw.crypto_quotes where kafka_offset <= %s", (last,)
        ).fetchone()
        self.commits.append((min(r.offset for r in records), last, visible))
        commit_offsets(consumer, records)  # type: ignore[arg-type]


@pytest.fixture
def spy(warehouse: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> _Spy:
    installed = _Spy(warehouse)
    monkeypatch.setattr(ingest, "write_prepared_batch", installed.write)
    monkeypatch.setattr(ingest, "commit_offsets", installed.commit)
    return installed


def test_ingest_commits_each_batch_offsets_after_its_postgres_commit_and_in_order(
    kafka: str, make_topic: Callable[[], str], warehouse_url: str, spy: _Spy
) -> None:
    topic = make_topic()
    produce_quotes([quote_message(coin_id=1, minute=m) for m in range(40)], kafka, topic)

    counts = consume_and_load(kafka, topic, _group(), warehouse_url, batch_size=7, idle_s=2)

    assert counts["inserted"] == 40 and counts["batches"] == len(spy.commits) >= 2
    expected_first = 0
    for first, last, visible in spy.commits:
        assert first == expected_first  # in order, none skipped
        assert visible == last + 1  # every row up to this offset was already committed
        expected_first = last + 1
    assert expected_first == 40


def test_ingest_writer_failure_stops_the_load_and_commits_no_later_offset(
    kafka: str, make_topic: Callable[[], str], warehouse_url: str, spy: _Spy
) -> None:
    topic, group = make_topic(), _group()
    produce_quotes([quote_message(coin_id=1027, minute=m) for m in range(40)], kafka, topic)
    spy.fail_on_call = 3
    with pytest.raises(WarehouseError, match="failed mid-load"):
        consume_and_load(kafka, topic, group, warehouse_url, batch_size=7, idle_s=2)

    assert spy.failed_from is not None and spy.writes == 3  # nothing written after the failure
    assert all(last < spy.failed_from for _first, last, _visible in spy.commits)
    assert spy.warehouse.execute(
        "select count(*) from raw.crypto_quotes where kafka_offset >= %s", (spy.failed_from,)
    ).fetchone() == (0,)
    again = consume_and_load(kafka, topic, group, warehouse_url, idle_s=2)
    assert again["inserted"] == 40 - spy.failed_from
    assert spy.warehouse.execute("select count(*) from raw.crypto_quotes").fetchone() == (40,)


def _rejected(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "select kafka_offset, reason, message_base64, message_bytes"
        " from raw.crypto_quotes_rejected order by rejected_id"
    ).fetchall()


def test_ingest_refuses_quotes_from_the_future_and_before_bitcoin(
    kafka: str, make_topic: Callable[[], str], warehouse: psycopg.Connection, warehouse_url: str
) -> None:
    topic = make_topic()
    # Market cap 0 and no supply: CoinMarketCap's answer for an unverified supply, a value.
    good = quote_message(coin_id=1, minute=0, market_cap=0).to_bytes()
    assert b'"market_cap":0.0' in good
    good = good.replace(b'"circulating_supply":19000000.0', b'"circulating_supply":null')
    at, fetched = b'"last_updated":"2026-11-27T12:00:00Z"', b'"fetched_at":"2026-11-27T12:00:02Z"'
    assert at in good and fetched in good
    future_source = good.replace(at, b'"last_updated":"2099-01-01T00:00:00Z"')
    future_stamp = future_source.replace(fetched, b'"fetched_at":"2099-01-01T00:00:05Z"')
    ancient = good.replace(at, b'"last_updated":"2008-06-01T00:00:00Z"')
    _produce_raw(kafka, topic, [good, future_source, future_stamp, ancient])

    counts = consume_and_load(kafka, topic, _group(), warehouse_url, idle_s=2)

    assert (counts["inserted"], counts["rejected"]) == (1, 3)
    assert _keys(warehouse) == [(1, int(quote_message().last_updated.timestamp()))]
    assert warehouse.execute(
        "select message->'market_cap', message->'circulating_supply' from raw.crypto_quotes"
    ).fetchone() == (0, None)
    reasons = [r[1] for r in _rejected(warehouse)]
    assert "last_updated 2099-01-01T00:00:00+00:00 is in the future" in reasons[0]
    assert "more than 5 minutes after fetched_at" in reasons[0]
    assert "fetched_at 2099-01-01T00:00:05+00:00 is in the future" in reasons[1]
    assert "the loader's clock" in reasons[1]
    assert "before 2009-01-03" in reasons[2]


def test_ingest_simulated_and_real_quote_for_the_same_coin_and_minute_both_land(
    kafka: str, make_topic: Callable[[], str], warehouse: psycopg.Connection, warehouse_url: str
) -> None:
    topic = make_topic()
    simulated = quote_message(coin_id=1, minute=3, price=50_000.0)
    real = simulated.model_copy(update={"source": "coinmarketcap", "price": 61_234.5})
    produce_quotes([simulated, real, simulated], kafka, topic)  # the third is a redelivery

    counts = consume_and_load(kafka, topic, _group(), warehouse_url, idle_s=2)

    assert (counts["inserted"], counts["duplicates"]) == (2, 1)
    rows = warehouse.execute(
        "select source, coin_id, last_updated, (message->>'price')::float"
        " from raw.crypto_quotes order by source"
    ).fetchall()
    assert rows == [
        ("coinmarketcap", 1, real.last_updated, 61_234.5),
        ("simulator", 1, simulated.last_updated, 50_000.0),
    ]


def test_ingest_keeps_a_new_bad_message_at_an_offset_reused_after_a_broker_restart(
    stack: StackConfig,
    kafka: str,
    make_topic: Callable[[], str],
    warehouse: psycopg.Connection,
    warehouse_url: str,
) -> None:
    topic, group = make_topic(), _group()
    _produce_raw(kafka, topic, [b"first junk"])
    assert consume_and_load(kafka, topic, group, warehouse_url, idle_s=2)["rejected"] == 1
    # The local broker keeps its log in memory: after a restart the topic starts at offset 0.
    broker.stop_broker(stack)
    broker.start_broker(stack)
    broker.ensure_topic(kafka, topic)
    _produce_raw(kafka, topic, [b"second junk"])
    assert consume_and_load(kafka, topic, group, warehouse_url, idle_s=2)["rejected"] == 1
    # Re-reading the same message (a crash before the offset commit) still stores it once.
    consume_and_load(kafka, topic, _group(), warehouse_url, idle_s=2)

    rows = _rejected(warehouse)
    assert [(r[0], base64.b64decode(r[2])) for r in rows] == [
        (0, b"first junk"),
        (0, b"second junk"),
    ]


def test_ingest_quarantines_an_oversized_message_and_loads_the_ones_around_it(
    kafka: str, make_topic: Callable[[], str], warehouse: psycopg.Connection, warehouse_url: str
) -> None:
    topic, group = make_topic(), _group()
    huge = b'{"schema_version": 1, "name": "' + b"x" * 3_000_000 + b'"}'
    before, after = quote_message(coin_id=1, minute=0), quote_message(coin_id=1, minute=1)
    _produce_raw(kafka, topic, [before.to_bytes(), huge, after.to_bytes()])

    counts = consume_and_load(kafka, topic, group, warehouse_url, idle_s=2)

    assert (counts["inserted"], counts["rejected"]) == (2, 1)
    [(offset, reason, payload, size)] = _rejected(warehouse)
    assert offset == 1 and size == len(huge)
    assert f"{len(huge):,} bytes is larger than the {MAX_MESSAGE_BYTES:,}" in reason
    assert base64.b64decode(payload) == huge[:REJECTED_PAYLOAD_BYTES]  # its start, bounded
    # Every offset, the oversized one included, is committed: nothing is read twice.
    assert consume_and_load(kafka, topic, group, warehouse_url, idle_s=2)["batches"] == 0


def test_consume_batches_cuts_a_batch_at_its_byte_bound(
    kafka: str, make_topic: Callable[[], str]
) -> None:
    topic = make_topic()
    _produce_raw(kafka, topic, [bytes([65 + i]) * 100_000 for i in range(12)])
    consumer = open_consumer(kafka, _group(), topic)
    wait_for_assignment(consumer)
    batches = list(consume_batches(consumer, batch_size=5000, idle_s=2, max_batch_bytes=250_000))
    consumer.close()

    assert [r.offset for batch in batches for r in batch] == list(range(12))
    # Cut as soon as 250 kB are reached: never more than one message past the bound.
    assert all(sum(r.size for r in batch) < 250_000 + 100_000 for batch in batches)
    assert max(len(batch) for batch in batches) == 3


def test_ingest_fails_loudly_when_a_message_is_larger_than_the_consumer_may_receive(
    kafka: str, make_topic: Callable[[], str], warehouse: psycopg.Connection, warehouse_url: str
) -> None:
    topic, group = make_topic(), _group()
    _produce_raw(kafka, topic, [quote_message().to_bytes(), b"y" * 3_000_000])
    small = {"fetch.max.bytes": 1_000_000, "receive.message.max.bytes": 1_600_000}
    # Before: the broker's answer never arrived, the loader saw an idle topic and reported
    # success with nothing loaded, run after run.
    with pytest.raises(BrokerError, match="larger than the loader accepts"):
        consume_and_load(kafka, topic, group, warehouse_url, idle_s=3, consumer_overrides=small)
    # Nothing was committed past it: with the default bounds both messages are accounted for.
    counts = consume_and_load(kafka, topic, group, warehouse_url, idle_s=2)
    assert (counts["inserted"], counts["rejected"]) == (1, 1)


class _UnreadableAt:
    """The real consumer, except that the client reports the message at ``offset`` as unreadable
    (what librdkafka does for a message too large to fetch or corrupt): the error comes in its
    place and the partition's later messages wait behind it, as they do on a real fetch error."""

    def __init__(self, consumer: Consumer, offset: int, code: int) -> None:
        self._consumer, self._offset, self._code = consumer, offset, code
        self.reported = False

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        messages = self._consumer.consume(num_messages=num_messages, timeout=timeout)
        for i, msg in enumerate(messages):
            if not self.reported and msg.error() is None and msg.offset() == self._offset:
                self.reported = True
                error = Message(
                    topic=msg.topic(),
                    partition=msg.partition(),
                    offset=msg.offset(),
                    error=KafkaError(self._code, "Message at offset might be too large to fetch"),
                )
                return [*messages[:i], error]
        return messages

    def __getattr__(self, name: str) -> object:
        return getattr(self._consumer, name)


@pytest.mark.parametrize(
    "code", [KafkaError.MSG_SIZE_TOO_LARGE, KafkaError._BAD_MSG], ids=["too-large", "corrupt"]
)
def test_ingest_quarantines_a_message_the_client_cannot_read_and_skips_nothing_else(
    kafka: str,
    make_topic: Callable[[], str],
    warehouse: psycopg.Connection,
    warehouse_url: str,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
) -> None:
    topic, group = make_topic(), _group()
    produce_quotes([quote_message(coin_id=1, minute=m) for m in range(4)], kafka, topic)
    wrapped: list[_UnreadableAt] = []

    def open_unreadable(*args: object, **kwargs: object) -> _UnreadableAt:
        wrapped.append(_UnreadableAt(open_consumer(*args, **kwargs), 1, code))  # type: ignore[arg-type]
        return wrapped[-1]

    monkeypatch.setattr(ingest, "open_consumer", open_unreadable)
    counts = consume_and_load(kafka, topic, group, warehouse_url, idle_s=2)

    assert wrapped[0].reported
    assert (counts["inserted"], counts["rejected"]) == (3, 1)
    assert warehouse.execute(
        "select kafka_offset from raw.crypto_quotes order by 1"
    ).fetchall() == [(0,), (2,), (3,)]
    [(offset, reason, payload, size)] = _rejected(warehouse)
    assert (offset, payload, size) == (1, None, None)
    assert reason.startswith("the consumer could not read this message:")
    monkeypatch.undo()
    assert consume_and_load(kafka, topic, group, warehouse_url, idle_s=2)["batches"] == 0


def test_ingest_rejects_markup_and_control_characters_in_tickers_and_names(
    kafka: str, make_topic: Callable[[], str], warehouse: psycopg.Connection, warehouse_url: str
) -> None:
    topic = make_topic()
    real = quote_message(coin_id=1027).model_copy(update={"name": "Ünïcødé — 1inch (Bridged)"})
    good = quote_message(coin_id=1).to_bytes()
    hostile = [
        good.replace(b'"name":"Bitcoin"', b'"name":"<iframe srcdoc=\\"<script>x()</script>\\">"'),
        good.replace(b'"symbol":"BTC"', b'"symbol":"<img src=x>"'),
        good.replace(b'"name":"Bitcoin"', b'"name":"Bit\\u202ecoin"'),
        good.replace(b'"slug":"bitcoin"', b'"slug":"a/../b"'),
    ]
    assert all(value != good for value in hostile)
    _produce_raw(kafka, topic, [real.to_bytes(), *hostile])

    counts = consume_and_load(kafka, topic, _group(), warehouse_url, idle_s=2)

    assert (counts["inserted"], counts["rejected"]) == (1, 4)
    assert warehouse.execute("select message->>'name' from raw.crypto_quotes").fetchall() == [
        ("Ünïcødé — 1inch (Bridged)",)
    ]
    reasons = [r[1] for r in _rejected(warehouse)]
    assert "name: Value error, must not contain HTML markup" in reasons[0]
    assert "symbol: Value error, character '<' is not allowed in a ticker" in reasons[1]
    assert "U+202E" in reasons[2] and "slug" in reasons[3]
