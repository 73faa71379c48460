"""Real Airflow DAG runs (`dag.test()`): produce from the simulator to Kafka, then load to Postgres.

`dag.test()` runs the tasks in this process with the real metadata database, the real broker and
the real warehouse; the deferrable sensor's trigger runs in-process too. Each run costs ~10 s of
Airflow start-up, so the business logic is tested directly elsewhere and only these few runs go
through Airflow.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest

from moonwatch.sources.simulator import SimulatorServer
from moonwatch.stack.config import StackConfig
from tests.dags.support import load_dag

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_dag_runs_produce_then_load_put_every_coin_in_raw_quotes(
    airflow_db: StackConfig,
    simulator_env: SimulatorServer,
    kafka: str,
    make_topic: Callable[[], str],
    warehouse: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = make_topic()
    monkeypatch.setenv("MOONWATCH_TOPIC", topic)
    monkeypatch.setenv("MOONWATCH_SYMBOLS", "BTC,ETH,SOL")
    monkeypatch.setenv("MOONWATCH_CONSUMER_GROUP", f"dagtest-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("MOONWATCH_WAREHOUSE_URL", airflow_db.warehouse_url)
    # The sensor reads its group from the Airflow Connection: give it the loader's group.
    import json
    import os

    conn = json.loads(os.environ["AIRFLOW_CONN_MOONWATCH_KAFKA"])
    conn["extra"]["group.id"] = os.environ["MOONWATCH_CONSUMER_GROUP"]
    monkeypatch.setenv("AIRFLOW_CONN_MOONWATCH_KAFKA", json.dumps(conn))

    produced = load_dag("crypto_quotes_produce").test()
    assert produced.state == "success"

    loaded = load_dag("crypto_quotes_load").test()
    assert loaded.state == "success"
    rows = warehouse.execute(
        "select message->>'symbol', kafka_topic from raw.crypto_quotes order by 1"
    ).fetchall()
    assert rows == [("BTC", topic), ("ETH", topic), ("SOL", topic)]
