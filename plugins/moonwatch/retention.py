"""Bounded growth: what ``crypto_maintenance`` deletes once the retention has passed.

Three kinds of material grow with every minute the stack runs, and each has its own cleanup:

* Airflow's task logs (and the dag-processor's per-file logs): :func:`clean_log_folder` deletes
  ``*.log`` files last written before the cutoff and the folders that leaves empty, as the
  official Helm chart's log groomer does. It works on the folders of the host it runs on.
* Airflow's metadata database: :func:`clean_metadata_db` runs Airflow's own
  ``airflow db clean`` as a subprocess (in Airflow 3 task code may not use the ORM), with the
  metadata database's URL given to that subprocess only.
* The warehouse's refused input (``raw.*_rejected``): :func:`delete_rejected_before` deletes
  rows loaded before the cutoff in bounded batches. The quotes, listings and rates themselves
  are never deleted.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from moonwatch.errors import ConfigurationError, TransientError

logger = logging.getLogger(__name__)

# Every table `airflow db clean` knows in Airflow 3.3 except two that do not grow with time:
# `dag` (one row per DAG; its recency is the last parse, so after a long stop it would forget
# DAGs, their paused state and history before the dag-processor has parsed them again) and
# `trigger` (the triggerer deletes triggers no deferred task uses; an old one still in use
# belongs to a task that is waiting). tests/test_retention.py checks the list against the
# installed Airflow, so an upgrade that adds a table is a decision, not a silent gap.
METADATA_TABLES = (
    "_xcom_archive",
    "asset_event",
    "callback",
    "celery_taskmeta",
    "celery_tasksetmeta",
    "connection_test_request",
    "dag_run",
    "dag_version",
    "deadline",
    "import_error",
    "job",
    "log",
    "partitioned_asset_key_log",
    "revoked_token",
    "task_instance",
    "task_instance_history",
    "task_reschedule",
    "task_state_store",
    "xcom",
)
METADATA_SKIPPED_TABLES = ("dag", "trigger")
# Rows a single delete may take: short transactions, so the loader never waits long on a lock.
BATCH_ROWS = 5_000
REJECTED_TABLES = ("crypto_quotes_rejected", "crypto_listings_rejected", "fx_rates_rejected")
DB_CLEAN_TIMEOUT_S = 30 * 60
_CHECKING_RE = re.compile(r"^Checking table (\S+)")
_FOUND_RE = re.compile(r"^Found (\d+) rows")


def cutoff(retention_days: int, now: datetime | None = None) -> datetime:
    """The moment before which material is deleted: ``retention_days`` before ``now``."""
    if retention_days < 1:
        raise ConfigurationError(
            f"MOONWATCH_RETENTION_DAYS is {retention_days}; it must be at least 1 (the default "
            "is 7). Set it to the number of days to keep logs, Airflow's history and rejected rows."
        )
    return (now or datetime.now(UTC)) - timedelta(days=retention_days)


# -- task logs ---------------------------------------------------------------------------------


@dataclass
class LogCleanup:
    """What :func:`clean_log_folder` deleted."""

    files: int = 0
    bytes: int = 0
    folders: int = 0

    def add(self, other: LogCleanup) -> LogCleanup:
        return LogCleanup(
            self.files + other.files, self.bytes + other.bytes, self.folders + other.folders
        )


def airflow_log_folders() -> list[Path]:
    """The folders Airflow writes log files to on this host, from Airflow's configuration:
    ``[logging] base_log_folder`` (task logs) and ``dag_processor_child_process_log_directory``
    (the dag-processor's, by default inside the first); a folder inside another is left out."""
    from airflow.sdk.configuration import conf

    named = [
        conf.get("logging", "base_log_folder"),
        conf.get("logging", "dag_processor_child_process_log_directory", fallback=""),
    ]
    return distinct_roots(Path(p).resolve() for p in named if p)


def distinct_roots(folders: Iterable[Path]) -> list[Path]:
    """``folders`` without any that lies inside another (it is walked with its parent)."""
    roots: list[Path] = []
    # Shortest first, so a parent is kept before its children; else in the given order.
    for folder in sorted(dict.fromkeys(folders), key=lambda p: len(p.parts)):
        if not any(folder.is_relative_to(root) for root in roots):
            roots.append(folder)
    return roots


def clean_log_folder(folder: Path, before: datetime) -> LogCleanup:
    """Delete the ``*.log`` files under ``folder`` last written before ``before``, then the
    folders that are left empty (never ``folder`` itself).

    Only Airflow's own ``.log`` files go; symlinks (the dag-processor's ``latest``) and other
    files stay. An empty folder is removed when this pass emptied it or nothing has changed in
    it since ``before``, so a folder a task has just created for its log is never taken away.
    """
    done = LogCleanup()
    if not folder.is_dir():
        return done
    limit = before.timestamp()
    top = str(folder)
    emptied: set[str] = set()
    for dirpath, _dirnames, filenames in os.walk(top, topdown=False):
        for name in filenames:
            if name.endswith(".log"):
                size = _unlink_if_older(os.path.join(dirpath, name), limit)
                if size is not None:
                    done.files += 1
                    done.bytes += size
                    emptied.add(dirpath)
        if dirpath != top and _rmdir_if_done(dirpath, dirpath in emptied, limit):
            done.folders += 1
            emptied.add(os.path.dirname(dirpath))
    return done


def _unlink_if_older(path: str, limit: float) -> int | None:
    """The size of the regular file at ``path`` if it was older than ``limit`` and is now gone."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_mtime >= limit:
            return None
        os.unlink(path)
    except FileNotFoundError:  # a concurrent cleanup on a shared volume took it first
        return None
    return info.st_size


def _rmdir_if_done(path: str, emptied_now: bool, limit: float) -> bool:
    try:
        if not emptied_now and os.lstat(path).st_mtime >= limit:
            return False
        os.rmdir(path)  # refuses a folder that is not empty
    except OSError:
        return False
    return True


def clean_task_logs(before: datetime, folders: Sequence[Path] | None = None) -> LogCleanup:
    """:func:`clean_log_folder` over Airflow's log folders on this host."""
    total = LogCleanup()
    for folder in airflow_log_folders() if folders is None else folders:
        done = clean_log_folder(folder, before)
        logger.info(
            "%s: deleted %d log files (%.1f MB) and %d empty folders older than %s",
            folder,
            done.files,
            done.bytes / 1e6,
            done.folders,
            before.isoformat(),
        )
        total = total.add(done)
    return total


# -- Airflow's metadata database ------------------------------------------------------------------


def require_metadata_db_url(url: str | None) -> str:
    """The metadata database URL ``airflow db clean`` needs, or a clear error."""
    if not url or not url.strip():
        raise ConfigurationError(
            "MOONWATCH_AIRFLOW_DB_URL is not set in the environment of the Airflow worker that "
            "runs crypto_maintenance. Airflow 3 hides [database] sql_alchemy_conn from tasks, so "
            "the cleanup's `airflow db clean` needs the metadata database's SQLAlchemy URL "
            "there: `make up` and docker-compose.yml set it; elsewhere export it on the workers."
        )
    return url


def clean_metadata_db(
    before: datetime,
    metadata_db_url: str,
    *,
    batch_size: int = BATCH_ROWS,
    tables: Sequence[str] = METADATA_TABLES,
) -> dict[str, int]:
    """Run ``airflow db clean`` for ``tables`` (rows from before ``before``, no archive tables)
    and return the rows it found to delete per table.

    The URL reaches the subprocess in its environment only (never its command line). Airflow's
    ``--error-on-cleanup-failure`` makes a table that could not be cleaned fail the task.
    """
    argv = [
        sys.executable,
        "-m",
        "airflow",
        "db",
        "clean",
        "--clean-before-timestamp",
        before.astimezone(UTC).isoformat(),
        "--tables",
        ",".join(tables),
        "--batch-size",
        str(batch_size),
        "--skip-archive",
        "--error-on-cleanup-failure",
        "--yes",
    ]
    try:
        result = subprocess.run(
            argv,
            env=metadata_cli_env(metadata_db_url),
            capture_output=True,
            text=True,
            timeout=DB_CLEAN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise TransientError(
            f"`airflow db clean` did not finish within {DB_CLEAN_TIMEOUT_S} s; the next run "
            "continues where it stopped (each batch is committed)."
        ) from e
    output = _redact(result.stdout + result.stderr, metadata_db_url)
    if result.returncode != 0:
        raise TransientError(
            f"`airflow db clean` failed (exit {result.returncode}); its output ends:\n"
            f"{output.strip()[-3000:]}"
        )
    found = rows_found(result.stdout)
    logger.info("airflow db clean, rows older than %s: %s", before.isoformat(), found)
    return found


def rows_found(output: str) -> dict[str, int]:
    """Rows per table from ``airflow db clean``'s "Checking table T" / "Found N rows" lines."""
    found: dict[str, int] = {}
    table = None
    for line in output.splitlines():
        if checking := _CHECKING_RE.match(line):
            table = checking.group(1)
        elif (rows := _FOUND_RE.match(line)) and table is not None:
            found[table] = int(rows.group(1))
            table = None
    return found


def metadata_cli_env(metadata_db_url: str) -> dict[str, str]:
    """This process's environment for an ``airflow`` CLI subprocess, with the metadata
    database's URL in place of the one Airflow 3 blanks out in task processes."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__SQL_ALCHEMY_CONN")
        )
    }
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata_db_url
    return env


def _redact(text: str, url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse: redact it whole
        return text.replace(url, "***")
    text = text.replace(url, "***")
    return text.replace(str(password), "***") if password else text


# -- the warehouse's rejected rows ----------------------------------------------------------------


def delete_rejected_before(
    warehouse_url: str,
    before: datetime,
    *,
    batch_rows: int = BATCH_ROWS,
    tables: Sequence[str] = REJECTED_TABLES,
) -> dict[str, int]:
    """Delete ``raw.<table>`` rows whose ``rejected_at`` (when they were loaded) is before
    ``before``, at most ``batch_rows`` a transaction; returns the rows deleted per table."""
    deleted: dict[str, int] = {}
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for table in tables:
            statement = sql.SQL(
                "delete from raw.{t} where rejected_id in ("
                " select rejected_id from raw.{t} where rejected_at < %s"
                " order by rejected_at limit %s)"
            ).format(t=sql.Identifier(table))
            deleted[table] = 0
            while True:
                rows = conn.execute(statement, (before, batch_rows)).rowcount
                deleted[table] += rows
                if rows < batch_rows:
                    break
    logger.info("rejected rows deleted, loaded before %s: %s", before.isoformat(), deleted)
    return deleted
