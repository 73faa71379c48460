"""crypto_maintenance through a real Airflow run (`dag.test()`): with the real metadata database,
warehouse and log folders, what is older than the retention goes and everything else stays.

The first run is aged ten days in the metadata database (as if it had run then), beside old and
fresh log files and rejected rows; a second run must delete exactly the old ones. A cleanup that
did nothing leaves the first run, the old files and the old rows, and fails this test.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from moonwatch.stack.config import StackConfig
from tests.dags.support import load_dag

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAG_ID = "crypto_maintenance"


def _aged_file(path: Path, days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("a task's log\n")
    when = (datetime.now(UTC) - timedelta(days=days)).timestamp()
    os.utime(path, (when, when))
    return path


def _metadata(stack: StackConfig) -> psycopg.Connection:
    # SQLAlchemy's driver name is not libpq's.
    url = stack.airflow_db_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    return psycopg.connect(url, autocommit=True)


def _rows(conn: psycopg.Connection, table: str, run_id: str) -> int:
    return conn.execute(
        f"select count(*) from {table} where dag_id = %s and run_id = %s",
        (DAG_ID, run_id),
    ).fetchone()[0]


def test_a_real_run_deletes_what_is_older_than_the_retention_and_keeps_the_rest(
    airflow_db: StackConfig, warehouse: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOONWATCH_RETENTION_DAYS", "3")
    # The launcher's Airflow environment (conftest applies it) carries the metadata URL the
    # metadata cleanup needs; without it the run would fail, naming MOONWATCH_AIRFLOW_DB_URL.
    assert os.environ["MOONWATCH_AIRFLOW_DB_URL"] == airflow_db.airflow_db_url
    dag = load_dag(DAG_ID)

    first = dag.test()
    assert first.state == "success"
    with _metadata(airflow_db) as meta:
        for table in ("dag_run", "task_instance"):
            meta.execute(
                f"update {table} set start_date = start_date - interval '10 days',"
                " end_date = end_date - interval '10 days' where dag_id = %s and run_id = %s",
                (DAG_ID, first.run_id),
            )
        assert _rows(meta, "task_instance", first.run_id) == 3

    task_logs = Path(os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    old_task_log = _aged_file(
        task_logs / "dag_id=crypto_alerts/run_id=scheduled__old/task_id=evaluate/attempt=1.log", 5
    )
    fresh_task_log = _aged_file(
        task_logs / "dag_id=crypto_alerts/run_id=scheduled__new/task_id=evaluate/attempt=1.log", 1
    )
    # The dag-processor's logs: by default under AIRFLOW_HOME, outside the task log folder.
    processor_logs = airflow_db.airflow_home / "logs" / "dag_processor"
    old_processor_log = _aged_file(processor_logs / "2026-01-01/dags-folder/x.py.log", 5)

    for days, offset in ((5, 1), (5, 2), (1, 3)):
        warehouse.execute(
            "insert into raw.crypto_quotes_rejected (kafka_topic, kafka_partition, kafka_offset,"
            " message_base64, message_bytes, reason, rejected_at)"
            " values ('maintenance', 0, %s, 'e30=', 2, 'test', now() - make_interval(days => %s))",
            (offset, days),
        )

    second = dag.test()

    assert second.state == "success"
    with _metadata(airflow_db) as meta:
        assert _rows(meta, "dag_run", first.run_id) == 0
        assert _rows(meta, "task_instance", first.run_id) == 0
        assert _rows(meta, "dag_run", second.run_id) == 1
        assert _rows(meta, "task_instance", second.run_id) == 3
    assert not old_task_log.exists() and not old_task_log.parent.exists()
    assert not old_processor_log.exists()
    assert fresh_task_log.exists() and task_logs.is_dir() and processor_logs.is_dir()
    assert warehouse.execute(
        "select kafka_offset from raw.crypto_quotes_rejected where kafka_topic = 'maintenance'"
    ).fetchall() == [(3,)]
