"""Kafka I/O: produce quote messages with delivery guarantees, consume them in batches.

The producer is idempotent with ``acks=all`` and FAILS when any message is not acknowledged
(the provider's operator only logs delivery failures). The consumer never auto-commits: the
loader commits offsets itself, after the Postgres commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from moonwatch.errors import BrokerError
from moonwatch.messages import QuoteMessage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """One consumed message, detached from the client library."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def produce_quotes(
    messages: Iterable[QuoteMessage],
    bootstrap: str,
    topic: str,
    delivery_timeout_s: float = 30.0,
) -> int:
    """Produce every message and wait for the broker's acknowledgement of each.

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


def open_consumer(bootstrap: str, group_id: str, topic: str, **overrides: object) -> Consumer:
    """A manual-commit consumer subscribed to ``topic``, reading from the earliest offset."""
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # tansu makes a join wait about half the session timeout; keep it short locally.
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "max.poll.interval.ms": 300_000,
        **overrides,
    }
    consumer = Consumer(config)
    consumer.subscribe([topic])
    return consumer


def wait_for_assignment(consumer: Consumer, timeout_s: float = 30.0) -> list[TopicPartition]:
    """Poll until the group has given this consumer its partitions.

    Closing a consumer whose join is still pending can jam the group on tansu, so every consumer
    waits for its assignment before it may close.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assignment = consumer.assignment()
        if assignment:
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
) -> Iterator[list[KafkaRecord]]:
    """Yield batches until nothing arrives for ``idle_s`` seconds or ``max_messages`` is reached.

    Idle time, not the high watermark, decides "caught up" (tansu's watermark is unreliable).
    """
    seen = 0
    idle_since = time.monotonic()
    while max_messages is None or seen < max_messages:
        want = batch_size if max_messages is None else min(batch_size, max_messages - seen)
        try:
            raw = consumer.consume(num_messages=want, timeout=poll_s)
        except KafkaException as e:
            raise BrokerError(f"consuming failed: {e}") from e
        batch: list[KafkaRecord] = []
        for msg in raw:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise BrokerError(f"consuming failed: {err.str()}")
            batch.append(
                KafkaRecord(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value())
            )
        if batch:
            seen += len(batch)
            idle_since = time.monotonic()
            yield batch
        elif time.monotonic() - idle_since >= idle_s:
            return


def commit_offsets(consumer: Consumer, records: list[KafkaRecord]) -> None:
    """Synchronously commit the offset after the last record of each partition in ``records``."""
    last: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record.topic, record.partition)
        last[key] = max(last.get(key, -1), record.offset)
    if not last:
        return
    offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as e:
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
