"""Consume-and-load against the real broker and the real Postgres: nothing lost, nothing doubled."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable

import psycopg
import pytest
from confluent_kafka import Producer

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
from moonwatch.warehouse.quotes import (
    LoadResult,
    PreparedBatch,
    load_quotes_batch,
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
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
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
        load_quotes_batch(conn, batch)
    consumer.close()  # no offset commit

    after_restart = consume_and_load(kafka, topic, group, warehouse_url, idle_s=2)
    assert after_restart == {"inserted": 0, "duplicates": 6, "rejected": 0, "batches": 1}
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
        load_quotes_batch(conn, batch)
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
