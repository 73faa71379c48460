"""Kafka I/O: produce quote messages with delivery guarantees, consume them in batches.

The producer is idempotent with ``acks=all`` and FAILS when any message is not acknowledged
(the provider's operator only logs delivery failures); it keys each message by coin id, so one
coin's quotes stay in order in one partition. The consumer never auto-commits: the loader
commits offsets itself, after the Postgres commit.

Several loaders may share the topic's partitions in one consumer group. A group rebalances
when a loader joins, leaves or dies; the consumer tracks it (``GroupState``) so a loader never
takes a rebalance for an idle topic, and commits offsets only for partitions it still holds.
Whatever it could not commit is re-read by the partition's next holder, and the natural-key
upsert absorbs the replay. The only loader of a group (the default) does not join it: it takes
every partition itself and commits to the group's offsets all the same (``open_consumer``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from moonwatch.errors import BrokerError
from moonwatch.messages import QuoteMessage

logger = logging.getLogger(__name__)


# Memory the loader's consumer may hold, whatever the topic holds. librdkafka's defaults let
# one consumer queue 64 MB of prefetched messages and receive 100 MB responses; these bound a
# load to roughly MAX_FETCH_BYTES in flight plus MAX_QUEUED_KBYTES prefetched plus one batch.
MAX_FETCH_BYTES = 8 * 1024 * 1024
MAX_PARTITION_FETCH_BYTES = 1024 * 1024
MAX_QUEUED_KBYTES = 16 * 1024
# Once that queue is full, librdkafka postpones the partition's next fetch by this long; its
# default, 1 s, lets a loader catching up on a backlog drain the queue and then wait on an
# empty one: on 100,000 queued messages the loader waited a third of its run inside consume
# and loaded 33k msg/s, against 44k with 10 ms (50 ms did the same; the bound is unchanged).
FETCH_QUEUE_BACKOFF_MS = 10
# The largest single broker response accepted: a fetch plus one message of up to 64 MB (the
# broker returns the first message of a partition whole, whatever the fetch limits say).
MAX_RECEIVE_BYTES = MAX_FETCH_BYTES + 64 * 1024 * 1024
MAX_BATCH_BYTES = 16 * 1024 * 1024
# Errors about one message, not the connection: the message is quarantined and skipped.
_MESSAGE_ERRORS = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError._BAD_MSG,
        KafkaError._BAD_COMPRESSION,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.INVALID_RECORD,
    }
)
_UNREADABLE_RESPONSE = "Invalid response size"
# A commit refused because the group moved on (a loader joined, left or died): the rows are in
# Postgres, and the partition's next holder re-reads them from the last committed offset.
_REBALANCE_ERRORS = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError._ASSIGNMENT_LOST,
    }
)
# The group's session timeout (group_client_config): a dead member's partitions move on after
# it, so a rebalance that lasts several of these is stuck, not slow.
SESSION_TIMEOUT_S = 6.0
REBALANCE_WAIT_S = 5 * SESSION_TIMEOUT_S
# Loaders started together leave the group one rebalance apart. A member that leaves while the
# group is still settling another's departure makes real Kafka restart the rebalance, and on
# the local broker (tansu) it can jam the group for good: tansu may name the departed member
# leader of the next generation, whose assignment never comes, so every later join waits
# forever (about one run in ten of three loaders ending together, in a probe). A join waits
# about half the session timeout, so a whole one between departures keeps them apart.
LEAVE_GAP_S = SESSION_TIMEOUT_S


def member_idle_s(idle_s: float, member: int) -> float:
    """The idle wait before loader ``member`` (0..N-1 of loaders started together) leaves."""
    return idle_s + member * LEAVE_GAP_S


class KafkaRecord(NamedTuple):
    """One consumed message, detached from the client library.

    ``error`` is set when the client could not read the message itself (too large, corrupt):
    the record then stands for that offset so the loader can quarantine it with the reason.
    A named tuple, not a frozen dataclass: the loader builds one per message, and a frozen
    dataclass takes three times as long to build (0.6 against 0.2 µs).
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    error: str | None = None

    @property
    def size(self) -> int:
        return len(self.key or b"") + len(self.value or b"")


@dataclass
class GroupState:
    """What the consumer group has told this member, from its rebalance callbacks.

    ``answered``: the first join completed (possibly with no partitions: more loaders than
    partitions). ``rebalancing``: partitions were revoked and the new ones not yet assigned.
    ``changed_at``: when either last happened (``time.monotonic``). ``held``: every partition
    this member held at some point (a loader's share, reported in its counts).
    """

    answered: bool = False
    rebalancing: bool = False
    changed_at: float = field(default_factory=time.monotonic)
    held: set[int] = field(default_factory=set)

    def on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.answered, self.rebalancing = True, False
        self.changed_at = time.monotonic()
        self.held.update(p.partition for p in partitions)
        logger.info("assigned partitions %s", sorted(p.partition for p in partitions))

    def on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.rebalancing = True
        self.changed_at = time.monotonic()
        logger.info("group rebalancing: partitions %s revoked", [p.partition for p in partitions])


class LoaderConsumer(Consumer):
    """A ``Consumer`` that remembers the client's connection-level errors, to report them, and
    its group's rebalances (``group``)."""

    def __init__(self, config: dict[str, object]) -> None:
        self.client_errors: list[str] = []
        self.group = GroupState()
        super().__init__({**config, "error_cb": self._on_error})

    def _on_error(self, error: KafkaError) -> None:
        self.client_errors = [*self.client_errors[-9:], error.str()]

    def subscribe_tracked(self, topic: str) -> None:
        self.subscribe([topic], on_assign=self.group.on_assign, on_revoke=self.group.on_revoke)

    def assign_all(self, topic: str, timeout_s: float = 15.0) -> None:
        """Take every partition of ``topic``, from the group's committed offsets, unjoined."""
        try:
            metadata = self.list_topics(topic, timeout=timeout_s).topics.get(topic)
        except KafkaException as e:
            raise BrokerError(
                f"cannot read topic {topic!r}'s partitions from the broker ({e}). Check the "
                "broker with `make status`; the task will retry."
            ) from e
        if metadata is None or metadata.error is not None or not metadata.partitions:
            reason = metadata.error.str() if metadata is not None and metadata.error else "none"
            raise BrokerError(
                f"topic {topic!r} has no partitions on the broker ({reason}). `make up` creates "
                "it; on your own Kafka, create it with the partitions MOONWATCH_TOPIC_PARTITIONS "
                "names."
            )
        partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
        self.assign(partitions)  # no offset given: each starts at the group's committed one
        self.group.on_assign(self, partitions)


def produce_quotes(
    messages: Iterable[QuoteMessage],
    bootstrap: str,
    topic: str,
    delivery_timeout_s: float = 30.0,
    security: Mapping[str, str] | None = None,
) -> int:
    """Produce every message and wait for the broker's acknowledgement of each. ``security``
    is librdkafka's security settings (``Settings.kafka_security_config``), if the cluster
    needs any.

    Returns the number delivered; raises ``BrokerError`` naming how many were not delivered
    and why, so the Airflow task fails and retries instead of reporting a false success.
    """
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": "none",
            "linger.ms": 5,
            # Bounded so a down broker fails the task within the timeout, not after 5 minutes.
            "message.timeout.ms": int(delivery_timeout_s * 1000),
            "socket.timeout.ms": 10_000,
            **(security or {}),
        }
    )
    failures: list[str] = []
    delivered = 0

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        nonlocal delivered
        if err is None:
            delivered += 1
        else:
            failures.append(f"key {msg.key()!r}: {err.str()}")

    sent = 0
    for message in messages:
        while True:
            try:
                producer.produce(
                    topic, key=message.key, value=message.to_bytes(), on_delivery=on_delivery
                )
                break
            except BufferError:
                producer.poll(0.5)  # local queue full: let deliveries drain
        sent += 1
    pending = producer.flush(delivery_timeout_s + 5)
    if pending or failures or delivered != sent:
        reasons = "; ".join(failures[:3]) or "no acknowledgement before the timeout"
        raise BrokerError(
            f"{sent - delivered} of {sent} messages were not delivered to topic {topic!r} on "
            f"{bootstrap} ({reasons}). Check the broker with `make status`; the task will retry."
        )
    logger.info("delivered %d messages to %s", delivered, topic)
    return delivered


def group_client_config(bootstrap: str, group_id: str) -> dict[str, object]:
    """The client config every member of the loader's group shares: the loader's consumer
    and the quotes sensor, which reads it from the Airflow connection ``moonwatch_kafka``
    (the launcher writes it from this). Offsets are committed by hand, never automatically."""
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # tansu makes a join wait about half the session timeout; keep it short locally.
        "session.timeout.ms": int(SESSION_TIMEOUT_S * 1000),
    }


def open_consumer(
    bootstrap: str, group_id: str, topic: str, alone: bool = False, **overrides: object
) -> Consumer:
    """A manual-commit consumer of ``topic``, reading from the group's committed offsets (the
    earliest where there are none), subscribed as a member of the group.

    ``alone``: the group's only loader. It takes every partition of the topic itself instead
    of joining, which saves the join: about 3 s on the local broker, and the same on Kafka,
    whose ``group.initial.rebalance.delay.ms`` holds an empty group's first join 3 s by
    default. It still commits to the group's offsets, which Kafka accepts while no member is
    joined; a commit refused because one is (a loader or sensor subscribed meanwhile) leaves
    its rows to be re-read, like a commit a rebalance refuses. Two of them at once (a retry
    beside a task the executor lost) cannot lose a message either: each starts from a
    committed offset, below which everything was stored, and commits only past rows it stored
    itself; at worst one moves an offset back and a batch is re-read as duplicates.
    """
    config = {
        **group_client_config(bootstrap, group_id),
        "enable.auto.offset.store": False,
        "heartbeat.interval.ms": 1000,
        "max.poll.interval.ms": 300_000,
        "fetch.max.bytes": MAX_FETCH_BYTES,
        "max.partition.fetch.bytes": MAX_PARTITION_FETCH_BYTES,
        "queued.max.messages.kbytes": MAX_QUEUED_KBYTES,
        "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
        "receive.message.max.bytes": MAX_RECEIVE_BYTES,
        **overrides,
    }
    consumer = LoaderConsumer(config)
    if alone:
        consumer.assign_all(topic)
    else:
        consumer.subscribe_tracked(topic)
    return consumer


def _group_of(consumer: Consumer) -> GroupState | None:
    return getattr(consumer, "group", None)


def wait_for_assignment(consumer: Consumer, timeout_s: float = 30.0) -> list[TopicPartition]:
    """Poll until the group has answered this consumer's join; returns its partitions.

    Closing a consumer whose join is still pending can jam the group on tansu, so every consumer
    waits for its assignment before it may close. A member of a group with more members than
    partitions is answered with none: it returns an empty list and goes idle.
    """
    deadline = time.monotonic() + timeout_s
    group = _group_of(consumer)
    while time.monotonic() < deadline:
        assignment = consumer.assignment()
        if assignment or (group is not None and group.answered):
            return assignment
        msg = consumer.poll(0.2)
        if msg is not None:
            # A message before the assignment call returned: rewind so nobody skips it.
            consumer.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset()))
            return consumer.assignment()
    raise BrokerError(
        f"the consumer group did not assign partitions within {timeout_s:.0f} s. Check the broker "
        "with `make status`; the task will retry."
    )


def consume_batches(
    consumer: Consumer,
    batch_size: int = 5000,
    idle_s: float = 3.0,
    max_messages: int | None = None,
    poll_s: float = 0.5,
    max_batch_bytes: int = MAX_BATCH_BYTES,
    yield_idle: bool = False,
) -> Iterator[list[KafkaRecord]]:
    """Yield batches until nothing arrives for ``idle_s`` seconds or ``max_messages`` is reached.

    A batch holds at most ``batch_size`` messages and is cut as soon as its keys and values
    reach ``max_batch_bytes`` (so it passes that by less than one message). A message the
    client cannot read (too large, corrupt) comes as a record with ``error`` set, and the
    consumer moves past it, so one bad message never stalls the partition and no good one is
    skipped.

    Idle time, not the high watermark, decides "caught up" (tansu's watermark is unreliable).
    It counts from the last message or the last assignment, and not at all while the group
    rebalances: a loader never mistakes a rebalance for an empty topic, and never closes with
    its re-join pending. A rebalance longer than ``REBALANCE_WAIT_S`` is a ``BrokerError``.
    With ``yield_idle`` an empty batch comes after each empty poll, so the caller can commit
    the offsets of what it stored while it waits, not only after the idle wait.
    """
    seen = 0
    idle_since = time.monotonic()
    batch: list[KafkaRecord] = []
    batch_bytes = 0
    while max_messages is None or seen < max_messages:
        room = batch_size - len(batch)
        want = room if max_messages is None else min(room, max_messages - seen)
        asked = min(want, 500)  # small polls: little is held beyond the batch being built
        try:
            raw = consumer.consume(num_messages=asked, timeout=poll_s)
        except KafkaException as e:
            raise BrokerError(f"consuming failed: {e}") from e
        for msg in raw:
            record = _record(consumer, msg)
            if record is None:
                continue
            batch.append(record)
            batch_bytes += record.size
            seen += 1
            if len(batch) >= batch_size or batch_bytes >= max_batch_bytes:
                idle_since = time.monotonic()
                yield batch
                batch, batch_bytes = [], 0
        if batch and len(raw) < asked:  # the poll timed out unfilled: caught up for now
            idle_since = time.monotonic()
            yield batch
            batch, batch_bytes = [], 0
        elif not batch and not raw:
            if _idle_for(consumer, idle_since) >= idle_s:
                _raise_if_unreadable(consumer)
                return
            if yield_idle:
                yield []
    if batch:
        yield batch


def _idle_for(consumer: Consumer, idle_since: float) -> float:
    """Seconds this consumer has been idle with its partitions settled (0 mid-rebalance)."""
    group = _group_of(consumer)
    now = time.monotonic()
    if group is None:
        return now - idle_since
    if group.rebalancing:
        if now - group.changed_at > REBALANCE_WAIT_S:
            raise BrokerError(
                f"the consumer group has been rebalancing for over {REBALANCE_WAIT_S:.0f} s "
                "(a member that left mid-rebalance can leave a broker waiting for it); nothing "
                "was committed past what is in Postgres. Check the broker with `make status`; "
                "the task will retry."
            )
        return 0.0
    return now - max(idle_since, group.changed_at)


def _record(consumer: Consumer, msg: Message) -> KafkaRecord | None:
    err = msg.error()
    if err is None:
        return KafkaRecord(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value())
    if err.code() == KafkaError._PARTITION_EOF:
        return None
    offset = msg.offset()
    if err.code() in _MESSAGE_ERRORS and offset is not None and offset >= 0:
        # Skip exactly this offset: the record quarantines it, its batch's commit covers it.
        consumer.seek(TopicPartition(msg.topic(), msg.partition(), offset + 1))
        logger.warning(
            "cannot read %s[%d]@%d (%s); quarantining it",
            msg.topic(),
            msg.partition(),
            offset,
            err.str(),
        )
        return KafkaRecord(
            msg.topic(),
            msg.partition(),
            offset,
            msg.key(),
            None,
            error=f"the consumer could not read this message: {err.str()}"[:500],
        )
    raise BrokerError(f"consuming failed: {err.str()}")


def _raise_if_unreadable(consumer: Consumer) -> None:
    """Fail loudly when 'idle' really means the broker answered with more than we accept."""
    errors = getattr(consumer, "client_errors", [])
    if any(_UNREADABLE_RESPONSE in e for e in errors):
        raise BrokerError(
            "the broker holds a message larger than the loader accepts "
            f"({MAX_RECEIVE_BYTES:,} bytes per response), so nothing after it can be read "
            f"({errors[-1][:200]}). Find it at the loader group's committed offset and delete "
            "or re-produce the topic without it; nothing was committed past it."
        )


def commit_offsets(consumer: Consumer, records: list[KafkaRecord]) -> None:
    """Synchronously commit the offset after the last record of each partition in ``records``.

    Only for partitions the consumer still holds: a partition a rebalance gave to another
    loader is that loader's to commit (committing it here could move its offset back). A
    commit the group refuses because it rebalanced is skipped with a warning. Either way the
    rows are in Postgres and the partition's holder re-reads them; the upsert keeps them single.
    """
    last: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record.topic, record.partition)
        last[key] = max(last.get(key, -1), record.offset)
    if _group_of(consumer) is not None:
        held = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        if moved := sorted(p for t, p in last if (t, p) not in held):
            logger.warning("partitions %s moved to another loader; it re-reads them", moved)
        last = {key: offset for key, offset in last.items() if key in held}
    if not last:
        return
    offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as e:
        if e.args and e.args[0].code() in _REBALANCE_ERRORS:
            logger.warning(
                "offsets not committed, the group refused them (%s: it rebalanced, or a "
                "member joined a group this loader reads alone): the rows are in Postgres "
                "and the partitions' next reader re-reads them",
                e.args[0].str(),
            )
            return
        raise BrokerError(
            f"the rows are in Postgres but committing Kafka offsets failed ({e}); the next run "
            "re-reads those messages and the natural-key upsert keeps them single"
        ) from e


def describe_waiting_message(message: Message) -> dict[str, object] | None:
    """The sensor's ``apply_function``: any message on the topic means "there is work".

    It runs in the triggerer, which imports it by dotted path, so it lives here in ``plugins/``.
    It only peeks (the sensor does not commit); the loader reads the message for real.
    """
    if message is None or message.error() is not None:
        return None
    return {"topic": message.topic(), "partition": message.partition(), "offset": message.offset()}
