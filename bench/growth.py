"""Measurement 3 (issue 15): bounded growth, in a full local stack of our own at 10 coins.

``python -m moonwatch.stack up`` in a temporary MOONWATCH_HOME on free ports, with the default
10 coins, no history backfill and a short retention (``MOONWATCH_RETENTION_DAYS``, 2 here),
``down`` at the end, always.

* The rate: after a warm-up, a window of W minutes. What the stack wrote in it (files and MB of
  Airflow's task and dag-processor logs, the launcher's service logs, the metadata database's
  rows and size) is multiplied by 1440 / W: a day **extrapolated** from W minutes, not a day
  measured.
* Flat across the retention boundary: D simulated days in the same stack. Each day starts by
  ageing every log file, finished metadata row and rejected row by one day (file times and
  timestamps moved back); then comes a short real interval of the stack's own output (plus
  synthetic rejected rows, since the simulator sends none), and the real ``crypto_maintenance``
  DAG is triggered and awaited. So each simulated day's material is deleted R days later, and
  the totals after each day's cleanup rise for R days, then stay flat.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from bench import sizes as bench_sizes
from bench.common import Section, temp_stack_env
from bench.stack_load import _stack
from moonwatch.stack.config import StackConfig
from moonwatch.stack.files import SERVICE_LOG_MAX_BYTES

logger = logging.getLogger("bench.growth")
DAG_ID = "crypto_maintenance"
RETENTION_DAYS = 2
REJECTED_PER_DAY = 200
# Finished material only: the scheduler's own job row, running runs and tasks keep their times.
_AGE_METADATA = (
    "update dag_run set start_date = start_date - interval '1 day',"
    " end_date = end_date - interval '1 day' where state in ('success', 'failed')",
    "update task_instance set start_date = start_date - interval '1 day',"
    " end_date = end_date - interval '1 day'"
    " where state in ('success', 'failed', 'skipped', 'upstream_failed', 'removed')",
    "update task_instance_history set start_date = start_date - interval '1 day'",
    "update task_reschedule set start_date = start_date - interval '1 day'",
    "update log set dttm = dttm - interval '1 day'",
    "update xcom set timestamp = timestamp - interval '1 day'",
    "update asset_event set timestamp = timestamp - interval '1 day'",
    "update job set latest_heartbeat = latest_heartbeat - interval '1 day'"
    " where state <> 'running'",
)
_COUNTED_TABLES = ("dag_run", "task_instance", "task_instance_history", "log", "xcom", "job")


@dataclass
class Totals:
    """What the stack holds at one moment."""

    airflow_log_files: int
    airflow_log_bytes: int
    service_log_bytes: int
    metadata_rows: dict[str, int]
    metadata_db_bytes: int
    rejected_rows: int

    def minus(self, earlier: Totals) -> Totals:
        return Totals(
            self.airflow_log_files - earlier.airflow_log_files,
            self.airflow_log_bytes - earlier.airflow_log_bytes,
            self.service_log_bytes - earlier.service_log_bytes,
            {k: v - earlier.metadata_rows.get(k, 0) for k, v in self.metadata_rows.items()},
            self.metadata_db_bytes - earlier.metadata_db_bytes,
            self.rejected_rows - earlier.rejected_rows,
        )


def log_folders(config: StackConfig) -> list[Path]:
    """Airflow's log folders in the local stack: task logs and the dag-processor's (by
    default under AIRFLOW_HOME)."""
    return [config.log_dir / "airflow", config.airflow_home / "logs"]


def _log_files(folders: list[Path]) -> list[Path]:
    return [
        Path(d) / name
        for folder in folders
        for d, _dirs, names in os.walk(folder)
        for name in names
        if name.endswith(".log")
    ]


def measure_totals(config: StackConfig, meta: psycopg.Connection) -> Totals:
    files = _log_files(log_folders(config))
    sizes = [_size(p) for p in files]
    service_logs = [_size(p) for p in config.log_dir.glob("*.log")]
    rows = {
        t: meta.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(t))).fetchone()[0]
        for t in _COUNTED_TABLES
    }
    db_bytes = meta.execute("select pg_database_size(current_database())").fetchone()[0]
    with psycopg.connect(config.warehouse_url) as wh:
        rejected = wh.execute("select count(*) from raw.crypto_quotes_rejected").fetchone()[0]
    return Totals(len(files), sum(sizes), sum(service_logs), rows, db_bytes, rejected)


def _size(path: Path) -> int:
    with contextlib.suppress(FileNotFoundError):
        return path.stat().st_size
    return 0


def age_one_day(config: StackConfig, meta: psycopg.Connection) -> None:
    """Move every log file's time and every finished row's timestamps one day back."""
    day = 86_400
    for path in _log_files(log_folders(config)):
        with contextlib.suppress(FileNotFoundError):
            info = path.stat()
            os.utime(path, (info.st_atime - day, info.st_mtime - day))
    for folder in log_folders(config):  # folders too: an empty one goes once it is old
        for d, _dirs, _names in os.walk(folder):
            with contextlib.suppress(FileNotFoundError):
                info = os.stat(d)
                os.utime(d, (info.st_atime - day, info.st_mtime - day))
    for statement in _AGE_METADATA:
        meta.execute(statement)
    with psycopg.connect(config.warehouse_url, autocommit=True) as wh:
        wh.execute(
            "update raw.crypto_quotes_rejected set rejected_at = rejected_at - interval '1 day'"
        )


def add_rejections(config: StackConfig, day: int) -> None:
    """The simulator sends no bad messages: a day's worth of synthetic rejected rows."""
    with psycopg.connect(config.warehouse_url, autocommit=True) as wh:
        wh.execute(
            "insert into raw.crypto_quotes_rejected (kafka_topic, kafka_partition, kafka_offset,"
            " message_base64, message_bytes, reason, rejected_at)"
            " select 'bench-growth', %s, n, 'e30=', 2, 'synthetic', now()"
            " from generate_series(1, %s) n",
            (day, REJECTED_PER_DAY),
        )


def run_maintenance(
    config: StackConfig, meta: psycopg.Connection, timeout: float = 600
) -> tuple[str, float]:
    """Trigger crypto_maintenance in the running stack and wait for its run; returns its state
    and how long it ran (start to end, as Airflow recorded them)."""
    from moonwatch.stack.airflow import airflow_env

    run_id = f"bench_growth__{time.time_ns()}"
    result = subprocess.run(
        [str(config.venv_bin / "airflow"), "dags", "trigger", DAG_ID, "--run-id", run_id],
        env=airflow_env(config),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"`airflow dags trigger {DAG_ID}` failed: {result.stderr[-2000:]}")
    deadline = time.time() + timeout
    while time.time() < deadline:
        row = meta.execute(
            "select state, extract(epoch from end_date - start_date) from dag_run"
            " where dag_id = %s and run_id = %s",
            (DAG_ID, run_id),
        ).fetchone()
        if row and row[0] in ("success", "failed"):
            return row[0], float(row[1] or 0)
        time.sleep(3)
    raise RuntimeError(f"{DAG_ID} run {run_id} did not finish within {timeout:.0f} s")


def measure(
    quick: bool,
    warmup_min: float | None = None,
    window_min: float | None = None,
    days: int | None = None,
    day_min: float | None = None,
) -> Section:
    mode = bench_sizes.GROWTH[quick]
    warmup_min = warmup_min if warmup_min is not None else mode.warmup_min
    window_min = window_min or mode.window_min
    days = days or mode.days
    day_min = day_min or mode.day_min
    section = Section("3. Bounded growth at 10 coins")
    env = temp_stack_env()
    env.update({"MOONWATCH_HISTORY_DAYS": "0", "MOONWATCH_RETENTION_DAYS": str(RETENTION_DAYS)})
    home = Path(env["MOONWATCH_HOME"])
    try:
        up = _stack(env, "up", timeout=600)
        if up.returncode != 0:
            raise RuntimeError(f"`moonwatch.stack up` failed:\n{(up.stdout + up.stderr)[-3000:]}")
        config = StackConfig.from_env(env)
        meta_url = config.airflow_db_url.replace("postgresql+psycopg2://", "postgresql://", 1)
        with psycopg.connect(meta_url, autocommit=True) as meta:
            time.sleep(warmup_min * 60)
            start, t0 = measure_totals(config, meta), time.time()
            time.sleep(window_min * 60)
            end, t1 = measure_totals(config, meta), time.time()
            _report_rate(section, end.minus(start), (t1 - t0) / 60, warmup_min)
            rows = []
            for day in range(1, days + 1):
                age_one_day(config, meta)
                time.sleep(day_min * 60)
                add_rejections(config, day)
                state, seconds = run_maintenance(config, meta)
                rows.append((day, f"{state} in {seconds:.0f} s", measure_totals(config, meta)))
            _report_days(section, rows, day_min)
    finally:
        with contextlib.suppress(Exception):
            down = _stack(env, "down", timeout=180)
            logger.info("stack down: %s", down.stdout.strip())
        if not os.environ.get("MOONWATCH_KEEP_BENCH_HOME"):
            shutil.rmtree(home, ignore_errors=True)
    return section


def _report_rate(section: Section, delta: Totals, minutes: float, warmup_min: float) -> None:
    per_day = 1440 / minutes
    files = delta.airflow_log_files * per_day
    mb = delta.airflow_log_bytes * per_day / 1e6
    db_mb = delta.metadata_db_bytes * per_day / 1e6
    section.add(
        f"Rate, **extrapolated**: a {minutes:.1f}-minute window after {warmup_min:g} minutes of "
        f"warm-up, times {per_day:.0f} (a day is not measured).",
        "",
        "| written | in the window | a day, extrapolated | cleaned by |",
        "|---|---|---|---|",
        f"| Airflow log files (task + dag-processor) | {delta.airflow_log_files:,} | "
        f"{files:,.0f} | crypto_maintenance.clean_task_logs |",
        f"| Airflow log MB | {delta.airflow_log_bytes / 1e6:.2f} | {mb:,.0f} | same |",
        f"| metadata database MB | {delta.metadata_db_bytes / 1e6:.2f} | {db_mb:,.0f} | "
        "crypto_maintenance.clean_airflow_metadata |",
        *(
            f"| metadata rows: {table} | {n:,} | {n * per_day:,.0f} | same |"
            for table, n in delta.metadata_rows.items()
        ),
        f"| the launcher's service logs MB (`$MOONWATCH_HOME/logs/*.log`) | "
        f"{delta.service_log_bytes / 1e6:.2f} | {delta.service_log_bytes * per_day / 1e6:,.0f} | "
        "the supervisor's size cap: each at most "
        f"{SERVICE_LOG_MAX_BYTES / 2**20:.0f} MiB and one previous part |",
    )
    section.verdict(
        "3. Airflow logs written a day at 10 coins (extrapolated)",
        f"{files:,.0f} files, {mb:,.0f} MB",
        "reported",
        None,
    )


def _report_days(section: Section, rows: list[tuple[int, str, Totals]], day_min: float) -> None:
    section.add(
        "",
        f"Simulated days, retention {RETENTION_DAYS} days: each day is {day_min:g} real minutes "
        f"of the stack's own output plus {REJECTED_PER_DAY} synthetic rejected rows, after "
        "everything before it was aged one day; then crypto_maintenance is triggered and "
        "awaited. Totals after each day's cleanup:",
        "",
        "| day | maintenance run | log files | log MB | dag_run rows | task_instance rows "
        "| metadata DB MB | rejected rows |",
        "|---|---|---|---|---|---|---|---|",
    )
    for day, state, t in rows:
        section.add(
            f"| {day} | {state} | {t.airflow_log_files:,} | {t.airflow_log_bytes / 1e6:.2f} | "
            f"{t.metadata_rows['dag_run']:,} | {t.metadata_rows['task_instance']:,} | "
            f"{t.metadata_db_bytes / 1e6:.1f} | {t.rejected_rows:,} |"
        )
    # Past the boundary (from day retention + 1 on, the stack's material from before day 1 is
    # gone too) each day adds one day's material and removes one: the totals stay within the
    # noise of one day's output. Judged on the rejected rows (exact) and the log files.
    settled = [t for day, _s, t in rows if day >= RETENTION_DAYS + 1]
    flat = bool(settled) and all(
        t.rejected_rows == settled[0].rejected_rows
        and t.airflow_log_files <= 1.5 * settled[0].airflow_log_files
        for t in settled
    )
    ok = all(state.startswith("success") for _d, state, _t in rows)
    section.verdict(
        "3. Totals flat across the retention boundary (simulated days)",
        ", ".join(f"day {d}: {t.airflow_log_files:,} files" for d, _s, t in rows),
        f"flat from day {RETENTION_DAYS + 1} on; every maintenance run succeeds",
        flat and ok,
    )
