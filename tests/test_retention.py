"""Bounded growth (issue 15, item 3): the retention setting and the three cleanups, on a real
folder tree and a real warehouse. Each test holds old material the cleanup must delete and
fresh material (and the quotes) it must keep, so a cleanup that did nothing fails it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from moonwatch import retention
from moonwatch.errors import ConfigurationError
from moonwatch.settings import Settings, load_settings
from tests.factories import quote_message

NOW = datetime.now(UTC)
RETENTION_DAYS = 7
BEFORE = NOW - timedelta(days=RETENTION_DAYS)
OLD = NOW - timedelta(days=RETENTION_DAYS + 3)
FRESH = NOW - timedelta(days=RETENTION_DAYS - 1)


# -- the setting -----------------------------------------------------------------------------------


def test_retention_defaults_to_7_days_and_blank_means_the_default(monkeypatch) -> None:
    monkeypatch.delenv("MOONWATCH_RETENTION_DAYS", raising=False)
    assert Settings().retention_days == 7
    monkeypatch.setenv("MOONWATCH_RETENTION_DAYS", "")  # docker-compose's `${VAR:-}`
    assert Settings().retention_days == 7
    monkeypatch.setenv("MOONWATCH_RETENTION_DAYS", "2")
    assert Settings().retention_days == 2


@pytest.mark.parametrize("value", ["0", "-3", "seven", "1.5"])
def test_a_bad_retention_is_an_error_naming_the_variable(monkeypatch, value: str) -> None:
    monkeypatch.setenv("MOONWATCH_RETENTION_DAYS", value)
    with pytest.raises(ConfigurationError, match="MOONWATCH_RETENTION_DAYS"):
        load_settings()


def test_cutoff_is_the_retention_before_now_and_refuses_less_than_a_day() -> None:
    assert retention.cutoff(3, NOW) == NOW - timedelta(days=3)
    with pytest.raises(ConfigurationError, match="at least 1"):
        retention.cutoff(0, NOW)


# -- Airflow's metadata tables -----------------------------------------------------------------


def test_metadata_tables_are_every_table_airflow_cleans_except_dag_and_trigger() -> None:
    """A new Airflow that cleans another table fails here: keeping it or not is a decision."""
    from airflow.utils.db_cleanup import config_dict

    known = set(config_dict) - {"session"}  # only with the FAB auth manager's DB sessions
    assert set(retention.METADATA_TABLES) == known - set(retention.METADATA_SKIPPED_TABLES)
    assert set(retention.METADATA_SKIPPED_TABLES) <= known


def test_db_clean_output_is_read_as_rows_per_table() -> None:
    output = (
        "\nChecking table dag_run\nFound 12 rows meeting deletion criteria.\n"
        "Performing Delete...\nFinished Performing Delete\n"
        "\nChecking table xcom\nFound 0 rows meeting deletion criteria.\n"
    )
    assert retention.rows_found(output) == {"dag_run": 12, "xcom": 0}


def test_the_metadata_url_reaches_the_subprocess_in_place_of_airflows_blanked_one(
    monkeypatch,
) -> None:
    # What Airflow 3's task supervisor leaves a task process (supervisor.block_orm_access).
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "airflow-db-not-allowed:///")
    monkeypatch.setenv("AIRFLOW__CORE__SQL_ALCHEMY_CONN", "airflow-db-not-allowed:///")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD", "/bin/false")
    env = retention.metadata_cli_env("postgresql+psycopg2://a:pw@db/airflow")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://a:pw@db/airflow"
    assert "AIRFLOW__CORE__SQL_ALCHEMY_CONN" not in env
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD" not in env


def test_without_the_metadata_url_the_error_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="MOONWATCH_AIRFLOW_DB_URL is not set"):
        retention.require_metadata_db_url(None)


# -- task logs -------------------------------------------------------------------------------------


def _write(path: Path, when: datetime, text: str = "log line\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def _age_folder(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


def test_log_cleanup_deletes_old_log_files_and_the_folders_they_leave_empty(
    tmp_path: Path,
) -> None:
    base = tmp_path / "logs"
    old_run = base / "dag_id=crypto_alerts" / "run_id=scheduled__old"
    old_a = _write(old_run / "task_id=evaluate" / "attempt=1.log", OLD, "x" * 1000)
    old_b = _write(old_run / "task_id=evaluate" / "attempt=2.log", OLD, "y" * 500)
    mixed_run = base / "dag_id=crypto_alerts" / "run_id=scheduled__mixed"
    old_c = _write(mixed_run / "task_id=a" / "attempt=1.log", OLD)
    fresh = _write(mixed_run / "task_id=b" / "attempt=1.log", FRESH)
    trigger = _write(mixed_run / "task_id=c" / "attempt=1.log.trigger.7.log", OLD)
    processor_old = _write(base / "dag_processor" / "2026-01-01" / "dags-folder" / "x.py.log", OLD)
    not_a_log = _write(base / "notes" / "keep.txt", OLD)
    (base / "dag_processor" / "latest").symlink_to(processor_old.parent.parent)
    # A folder a task created a moment ago for its log: empty, but not ours to take.
    just_made = base / "dag_id=crypto_alerts" / "run_id=manual__now" / "task_id=evaluate"
    just_made.mkdir(parents=True)

    done = retention.clean_log_folder(base, BEFORE)

    for gone in (old_a, old_b, old_c, trigger, processor_old):
        assert not gone.exists(), gone
    assert not old_run.exists()  # emptied folders go, up to the one that still holds a log
    assert not (mixed_run / "task_id=a").exists()
    assert not processor_old.parent.parent.exists()
    assert fresh.read_text() == "log line\n"
    assert not_a_log.exists() and just_made.is_dir() and base.is_dir()
    assert (base / "dag_processor" / "latest").is_symlink()
    assert (done.files, done.bytes) == (5, 1000 + 500 + 3 * len("log line\n"))
    # old_run, its task folder; mixed task_ids a and c; the processor's day and bundle folders
    assert done.folders == 6


def test_log_cleanup_removes_an_old_empty_folder_it_did_not_empty(tmp_path: Path) -> None:
    """A folder left empty by an earlier, interrupted pass goes once it is older than the cutoff."""
    leftover = tmp_path / "dag_id=x" / "run_id=old"
    leftover.mkdir(parents=True)
    _age_folder(leftover, OLD)
    _age_folder(leftover.parent, OLD)
    assert retention.clean_log_folder(tmp_path, BEFORE).folders == 2
    assert list(tmp_path.iterdir()) == []


def test_log_cleanup_of_a_missing_folder_does_nothing(tmp_path: Path) -> None:
    assert retention.clean_log_folder(tmp_path / "absent", BEFORE) == retention.LogCleanup()


def test_the_log_folders_come_from_airflows_configuration(monkeypatch, tmp_path: Path) -> None:
    """[logging] base_log_folder and the dag-processor's folder, as a deployment sets them; the
    dag-processor's default place (inside the first) is walked with it."""
    base, elsewhere = tmp_path / "task-logs", tmp_path / "processor-logs"
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(base))
    processor = "AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY"
    monkeypatch.setenv(processor, str(base / "dag_processor"))
    assert retention.airflow_log_folders() == [base.resolve()]
    monkeypatch.setenv(processor, str(elsewhere))
    assert retention.airflow_log_folders() == [base.resolve(), elsewhere.resolve()]


# -- the warehouse's rejected rows -------------------------------------------------------------


def _insert_rejections(conn: psycopg.Connection, when: datetime, count: int, tag: str) -> None:
    for n in range(count):
        conn.execute(
            "insert into raw.crypto_quotes_rejected (kafka_topic, kafka_partition, kafka_offset,"
            " message_key, message_base64, message_bytes, reason, rejected_at)"
            " values (%s, 0, %s, null, 'e30=', 2, 'test', %s)",
            (f"retention-{tag}", n, when),
        )
        conn.execute(
            "insert into raw.crypto_listings_rejected (source, snapshot_at, quote_currency,"
            " coin_id, payload, reason, rejected_at) values ('simulator', %s, 'USD', %s, '{}',"
            " %s, %s)",
            (when, str(n), tag, when),
        )
        conn.execute(
            "insert into raw.fx_rates_rejected (source, as_of_date, currency, payload, reason,"
            " rejected_at) values ('simulator', '2026-01-01', 'EUR', '{}', %s, %s)",
            (tag, when),
        )


def _counts(conn: psycopg.Connection) -> dict[str, tuple[int, int]]:
    """(old, fresh) rows per rejected table."""
    return {
        table: conn.execute(
            f"select count(*) filter (where rejected_at < %s), count(*) filter (where"
            f" rejected_at >= %s) from raw.{table}",
            (BEFORE, BEFORE),
        ).fetchone()
        for table in retention.REJECTED_TABLES
    }


@pytest.mark.integration
def test_rejected_rows_older_than_the_retention_go_in_batches_and_quotes_stay(
    warehouse: psycopg.Connection, warehouse_url: str
) -> None:
    warehouse.execute("truncate raw.crypto_listings_rejected, raw.fx_rates_rejected")
    _insert_rejections(warehouse, OLD, 5, "old")
    _insert_rejections(warehouse, FRESH, 2, "fresh")
    # An old quote: the quotes themselves are never deleted, however old they are.
    message = quote_message(1, 0)
    warehouse.execute(
        "insert into raw.crypto_quotes (coin_id, quote_currency, last_updated, message,"
        " kafka_topic, kafka_partition, kafka_offset, loaded_at)"
        " values (1, 'USD', %s, %s, 'retention', 0, 0, %s)",
        (message.last_updated, message.model_dump_json(), OLD),
    )
    assert _counts(warehouse) == {table: (5, 2) for table in retention.REJECTED_TABLES}

    # Two rows a batch: five old rows take three deletes per table.
    deleted = retention.delete_rejected_before(warehouse_url, BEFORE, batch_rows=2)

    assert deleted == {table: 5 for table in retention.REJECTED_TABLES}
    assert _counts(warehouse) == {table: (0, 2) for table in retention.REJECTED_TABLES}
    assert warehouse.execute("select count(*) from raw.crypto_quotes").fetchone() == (1,)
