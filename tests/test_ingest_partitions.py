"""Several loaders in one consumer group on a partitioned topic, against the real broker and
Postgres: every message loaded once, the partitions spread, and a loader killed mid-batch
(SIGKILL, a real process) leaves its partitions to the others without loss.

"Once" is checked against what the topic holds (each message's partition and offset, read
back with a separate group), not against the table's primary key alone: every row must carry
the position of a produced message, every produced message must have its row, and the
loaders' own counts must add up to what was produced.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

from moonwatch.errors import ConfigurationError
from moonwatch.ingest import consume_and_load
from moonwatch.kafka import consume_batches, open_consumer, produce_quotes, wait_for_assignment
from moonwatch.messages import parse_quote_message
from moonwatch.settings import load_settings
from moonwatch.stack import broker
from tests.factories import quote_message

pytestmark = pytest.mark.integration

PARTITIONS = 3
COIN_IDS = list(range(1, 31))
MINUTES = 10


def _partitioned_topic(kafka: str) -> str:
    topic = f"test-parts-{uuid.uuid4().hex[:10]}"
    broker.ensure_topic(kafka, topic, partitions=PARTITIONS)
    return topic


def _produce(kafka: str, topic: str) -> int:
    messages = [quote_message(coin_id=c, minute=m) for m in range(MINUTES) for c in COIN_IDS]
    return produce_quotes(messages, kafka, topic)


def _log(kafka: str, topic: str) -> dict[tuple[int, int], tuple[int, int]]:
    """What the topic holds, read with a group of its own: position -> (coin id, epoch s).

    It also checks the producer's keying: each message's key is its coin id, and all of one
    coin's messages sit in one partition (so they stay in order)."""
    consumer = open_consumer(kafka, f"reader-{uuid.uuid4().hex[:8]}", topic)
    wait_for_assignment(consumer)
    records = [r for batch in consume_batches(consumer, idle_s=2) for r in batch]
    consumer.close()
    log: dict[tuple[int, int], tuple[int, int]] = {}
    partition_of: dict[int, set[int]] = {}
    for record in records:
        message = parse_quote_message(record.value)
        assert record.key == str(message.coin_id).encode()
        partition_of.setdefault(message.coin_id, set()).add(record.partition)
        log[(record.partition, record.offset)] = (
            message.coin_id,
            int(message.last_updated.timestamp()),
        )
    assert all(len(parts) == 1 for parts in partition_of.values()), partition_of
    return log


def _rows(conn: psycopg.Connection, topic: str) -> list[tuple[int, int, int, int]]:
    return conn.execute(
        "select kafka_partition, kafka_offset, coin_id, extract(epoch from last_updated)::bigint"
        " from raw.crypto_quotes where kafka_topic = %s",
        (topic,),
    ).fetchall()


def _assert_each_message_once(
    conn: psycopg.Connection, topic: str, log: dict[tuple[int, int], tuple[int, int]]
) -> None:
    rows = _rows(conn, topic)
    by_position = {(p, o): (coin, at) for p, o, coin, at in rows}
    assert len(rows) == len(log) == len(by_position)  # one row per produced message
    assert by_position == log  # each row is the message at its position: none lost, none extra
    per_key = conn.execute(
        "select count(*) from raw.crypto_quotes group by coin_id, last_updated having count(*) > 1"
    ).fetchall()
    assert per_key == []


def _committed(kafka: str, topic: str, group: str) -> dict[int, int]:
    reader = Consumer({"bootstrap.servers": kafka, "group.id": group})
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return {tp.partition: tp.offset for tp in reader.committed(parts, timeout=10)}
    finally:
        reader.close()


def _log_end(log: dict[tuple[int, int], Any]) -> dict[int, int]:
    return {p: max(o for q, o in log if q == p) + 1 for p in range(PARTITIONS)}


def _run_loaders(
    kafka: str, topic: str, group: str, url: str, count: int, **kwargs: Any
) -> list[dict[str, Any]]:
    """``count`` loaders at once in ``group``, each its own consumer and Postgres connection,
    numbered as the DAG's mapped loaders are (so they leave one rebalance apart)."""
    results: list[dict[str, Any] | BaseException] = [RuntimeError("did not finish")] * count
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = consume_and_load(
                kafka, topic, group, url, loaders=count, member=i, **kwargs
            )
        except BaseException as e:  # noqa: BLE001 - re-raised below, in the test's thread
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def test_ingest_three_loaders_share_three_partitions_and_load_each_message_once(
    kafka: str, warehouse: psycopg.Connection, warehouse_url: str
) -> None:
    topic, group = _partitioned_topic(kafka), f"loaders-{uuid.uuid4().hex[:8]}"
    produced = _produce(kafka, topic)
    log = _log(kafka, topic)
    assert len(log) == produced
    # The keys spread over every partition (with one partition this alone fails).
    assert {p for p, _o in log} == set(range(PARTITIONS))

    results = _run_loaders(kafka, topic, group, warehouse_url, 3, batch_size=50, idle_s=3)

    _assert_each_message_once(warehouse, topic, log)
    # The loaders' own ledger: every message inserted by exactly one of them.
    assert sum(r["inserted"] for r in results) == produced
    # Each loader was given a share, and the shares cover the topic.
    assert all(r["partitions"] for r in results), results
    assert set().union(*(r["partitions"] for r in results)) == set(range(PARTITIONS))
    assert sum(1 for r in results if r["inserted"] > 0) >= 2, results
    assert _committed(kafka, topic, group) == _log_end(log)


def test_ingest_the_only_loader_reads_every_partition_without_joining_the_group(
    kafka: str,
    warehouse: psycopg.Connection,
    warehouse_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The only loader takes every partition itself. It loads all of a 3-partition topic even
    while another consumer (a sensor that has not left yet) holds every partition as the
    group's one member; a loader that joined would have had to wait for a share. The group
    refuses offsets from outside it while a member is joined: the rows are in Postgres, the
    offsets stay, and the next run re-reads them as duplicates, so nothing is lost."""
    topic, group = _partitioned_topic(kafka), f"loaders-{uuid.uuid4().hex[:8]}"
    produced = _produce(kafka, topic)
    log = _log(kafka, topic)
    member = open_consumer(kafka, group, topic)
    try:
        assert len(wait_for_assignment(member)) == PARTITIONS
        first = consume_and_load(kafka, topic, group, warehouse_url, batch_size=50, idle_s=2)
        assert [tp.partition for tp in member.assignment()] == list(range(PARTITIONS))
    finally:
        member.close()

    assert (first["inserted"], first["partitions"]) == (produced, list(range(PARTITIONS)))
    _assert_each_message_once(warehouse, topic, log)
    assert all(offset < 0 for offset in _committed(kafka, topic, group).values())
    assert "offsets not committed, the group refused them" in caplog.text

    again = consume_and_load(kafka, topic, group, warehouse_url, batch_size=50, idle_s=2)
    assert (again["inserted"], again["duplicates"]) == (0, produced)
    assert _committed(kafka, topic, group) == _log_end(log)
    _assert_each_message_once(warehouse, topic, log)


# The victim: the real loader in its own process, stopped in its first batch at `point` (the
# Postgres write, or the offset commit after it). It prints that batch's positions and waits to
# be killed.
_VICTIM = textwrap.dedent(
    """
    import json, sys, time
    from moonwatch import ingest

    kafka, topic, group, url, point = sys.argv[1:6]

    def stop(_first, second):
        records = second if point == "commit_offsets" else second.records
        print(json.dumps([[r.partition, r.offset] for r in records]), flush=True)
        time.sleep(600)

    setattr(ingest, point, stop)
    ingest.consume_and_load(kafka, topic, group, url, batch_size=50, idle_s=30, loaders=3)
    sys.exit("the victim finished without stopping")
    """
)


@pytest.mark.parametrize(
    ("point", "stored"),
    [("write_prepared_batch", False), ("commit_offsets", True)],
    ids=["before-postgres-commit", "between-postgres-and-offset-commit"],
)
def test_ingest_loader_killed_mid_batch_leaves_its_partitions_to_the_others_without_loss(
    kafka: str, warehouse: psycopg.Connection, warehouse_url: str, point: str, stored: bool
) -> None:
    topic, group = _partitioned_topic(kafka), f"loaders-{uuid.uuid4().hex[:8]}"
    produced = _produce(kafka, topic)
    log = _log(kafka, topic)

    # The victim joins first, alone: the group gives it every partition. It consumes its first
    # batch and stops at `point`, holding consumed messages whose offsets it never commits.
    victim = subprocess.Popen(
        [sys.executable, "-c", _VICTIM, kafka, topic, group, warehouse_url, point],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = victim.stdout.readline() if victim.stdout else ""
        assert line, f"the victim exited ({victim.wait()}) before stopping mid-batch"
        in_flight = {tuple(pos) for pos in json.loads(line)}
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    victim_partitions = {p for p, _o in in_flight}
    # The attack landed mid-batch: messages consumed and no offset committed, the batch in
    # Postgres only when the victim stopped after its Postgres commit (its writer thread may
    # have stored the next batch too; that one's offsets were never committed either).
    assert len(in_flight) == 50
    assert all(offset < 0 for offset in _committed(kafka, topic, group).values())
    victim_rows = {(p, o) for p, o, _c, _t in _rows(warehouse, topic)}
    if stored:
        assert in_flight <= victim_rows
    else:
        assert victim_rows == set()

    # Two survivors join the group the dead loader is still a member of: once its session
    # expires, the group gives them its partitions, and they read from the committed offsets.
    results = _run_loaders(kafka, topic, group, warehouse_url, 2, batch_size=50, idle_s=3)

    _assert_each_message_once(warehouse, topic, log)
    # The survivors' ledger: they inserted everything the victim had not stored, and re-read
    # (as duplicates, not rows) at least what it stored without committing the offsets.
    assert sum(r["inserted"] for r in results) == produced - len(victim_rows)
    assert sum(r["duplicates"] for r in results) >= len(victim_rows)
    survivors_held = set().union(*(r["partitions"] for r in results))
    assert victim_partitions <= survivors_held == set(range(PARTITIONS))
    assert all(r["partitions"] for r in results), results
    assert _committed(kafka, topic, group) == _log_end(log)


def test_ingest_a_loader_the_group_gives_no_partition_ends_cleanly(
    kafka: str, make_topic: Callable[[], str], warehouse: psycopg.Connection, warehouse_url: str
) -> None:
    """More loaders than partitions (a topic made elsewhere with fewer): the spare loader is
    answered with no partition, goes idle and ends, instead of failing the task."""
    topic, group = make_topic(), f"loaders-{uuid.uuid4().hex[:8]}"  # one partition
    produced = produce_quotes([quote_message(coin_id=c) for c in COIN_IDS], kafka, topic)

    # Both end without error (before, the spare one failed after 30 s waiting for a partition).
    # Which one holds the partition can change as the first leaves, so only the sum is fixed.
    results = _run_loaders(kafka, topic, group, warehouse_url, 2, idle_s=3)

    assert [0] in [r["partitions"] for r in results]
    assert sum(r["inserted"] for r in results) == produced
    assert len(_rows(warehouse, topic)) == produced


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MOONWATCH_TOPIC_PARTITIONS": "0"}, "PARTITIONS: Input should be greater"),
        ({"MOONWATCH_TOPIC_PARTITIONS": "65"}, "PARTITIONS: Input should be less"),
        ({"MOONWATCH_LOADERS": "4"}, "4 loaders for 3 partitions"),
        ({"MOONWATCH_LOADERS": "two"}, "MOONWATCH_LOADERS: Input should be a valid integer"),
    ],
)
def test_partition_and_loader_settings_refuse_bad_values_by_name(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=message):
        load_settings()


def test_partition_and_loader_settings_default_to_three_partitions_and_one_loader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOONWATCH_LOADERS", "")  # docker-compose's unset: the default
    settings = load_settings()
    assert (settings.topic_partitions, settings.loaders) == (3, 1)
