"""Real Airflow DAG runs (`dag.test()`): produce from the simulator to Kafka, then load to Postgres.

`dag.test()` runs the tasks in this process with the real metadata database, the real broker and
the real warehouse; the deferrable sensor's trigger runs in-process too. Each run costs ~10 s of
Airflow start-up, so the business logic is tested directly elsewhere and only these few runs go
through Airflow.
"""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

from moonwatch.sources.simulator import SimulatorServer
from moonwatch.stack import broker
from moonwatch.stack.config import StackConfig
from tests.dags.support import load_dag

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_dag_runs_produce_then_load_put_every_coin_in_raw_quotes(
    airflow_db: StackConfig,
    simulator_env: SimulatorServer,
    kafka: str,
    warehouse: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tasks reach the warehouse and the broker through the Airflow Connections alone, as
    in an Airflow configured the usual way: the MOONWATCH_ settings for them are unset here.
    The topic has 3 partitions and the load DAG maps 3 loaders onto them."""
    topic = f"dagtest-{uuid.uuid4().hex[:10]}"
    broker.ensure_topic(kafka, topic, partitions=3)
    monkeypatch.setenv("MOONWATCH_TOPIC", topic)
    monkeypatch.setenv("MOONWATCH_LOADERS", "3")
    monkeypatch.setenv("MOONWATCH_SYMBOLS", "BTC,ETH,SOL")
    for name in (
        "MOONWATCH_WAREHOUSE_URL",
        "MOONWATCH_KAFKA_BOOTSTRAP",
        "MOONWATCH_CONSUMER_GROUP",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_MOONWATCH_WAREHOUSE", airflow_db.warehouse_url)
    # A group of its own, so no earlier test's committed offsets hide this topic's messages;
    # the sensor and the loader both read it from this connection.
    group = f"dagtest-{uuid.uuid4().hex[:8]}"
    extra = {"bootstrap.servers": kafka, "group.id": group}
    monkeypatch.setenv(
        "AIRFLOW_CONN_MOONWATCH_KAFKA", json.dumps({"conn_type": "kafka", "extra": extra})
    )

    produced = load_dag("crypto_quotes_produce").test()
    assert produced.state == "success"

    dag = load_dag("crypto_quotes_load")
    loaded = dag.test()
    assert loaded.state == "success"
    loaders = [ti for ti in loaded.get_task_instances() if ti.task_id == "load_quotes"]
    assert sorted(ti.map_index for ti in loaders) == [0, 1, 2]
    rows = warehouse.execute(
        "select message->>'symbol', kafka_topic from raw.crypto_quotes order by 1"
    ).fetchall()
    assert rows == [("BTC", topic), ("ETH", topic), ("SOL", topic)]
    # The loader committed its offsets in the connection's group: nothing is left to re-read.
    reader = Consumer({"bootstrap.servers": kafka, "group.id": group})
    try:
        committed = reader.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    finally:
        reader.close()
    assert sum(max(tp.offset, 0) for tp in committed) == 3
