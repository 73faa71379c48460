"""History from the start: on a fresh warehouse in offline mode, `make up` asks Airflow for a
30-day backfill of ``crypto_quotes_backfill``, so the charts open with a month of simulated
minute quotes instead of an empty hour.

Airflow's own backfill does the work (the same ``airflow backfill create`` a user types, so it
shows in the UI like any backfill, one run per day, two at a time, behind the live producer).
The launcher only starts this module as a one-shot background process: it waits for the DAG
to be parsed, checks that the warehouse has no history yet, creates the backfill and exits,
so `make up` never waits for it. With a real key nothing happens: history costs credits and
needs a paid plan, so a person asks for it (README: History and backfill).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import psycopg

from moonwatch.errors import StackError
from moonwatch.settings import load_settings
from moonwatch.stack.config import StackConfig
from moonwatch.stack.process import ManagedProcess

logger = logging.getLogger("moonwatch.stack.history")

DAG_ID = "crypto_quotes_backfill"
HISTORY_DAYS = 30
DAYS_ENV = "MOONWATCH_HISTORY_DAYS"
MAX_ACTIVE_RUNS = 2
WAIT_FOR_DAG_SECONDS = 600.0
PROCESS_NAME = "history-backfill"


def has_history(warehouse_url: str, now: datetime) -> bool:
    """True when the warehouse already holds quotes older than a day (not a fresh one), or
    cannot tell (then asking again for a month of history is not worth the risk)."""
    try:
        with psycopg.connect(warehouse_url, connect_timeout=10) as conn:
            row = conn.execute(
                "select exists (select 1 from raw.crypto_quotes where last_updated < %s)",
                (now - timedelta(days=1),),
            ).fetchone()
    except psycopg.Error as e:
        logger.warning("cannot read raw.crypto_quotes (%s); not starting a history backfill", e)
        return True
    return bool(row and row[0])


def backfill_argv(airflow: str, now: datetime, days: int = HISTORY_DAYS) -> list[str]:
    """``airflow backfill create`` for the last ``days`` whole days (UTC). Airflow makes no
    run for today's unfinished day; the live producer covers today from `make up` on."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        airflow, "backfill", "create", "--dag-id", DAG_ID,
        "--from-date", (today - timedelta(days=days)).isoformat(),
        "--to-date", today.isoformat(),
        "--max-active-runs", str(MAX_ACTIVE_RUNS),
    ]  # fmt: skip


def request_history(
    airflow: str, deadline_s: float = WAIT_FOR_DAG_SECONDS, days: int = HISTORY_DAYS
) -> int:
    """The one-shot: create the backfill once the DAG is parsed; returns a process exit code."""
    settings = load_settings()
    if not settings.is_simulated:
        logger.info("a real CMC_API_KEY is set: history is backfilled on request only")
        return 0
    now = datetime.now(UTC)
    if has_history(settings.require_warehouse_url(), now):
        logger.info("the warehouse already has history: no backfill needed")
        return 0
    argv = backfill_argv(airflow, now, days)
    deadline = time.monotonic() + deadline_s
    while True:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        said = (done.stdout + done.stderr).strip()
        if done.returncode == 0:
            logger.info("asked Airflow for %d days of simulated history: %s", days,
                        " ".join(argv[1:]))  # fmt: skip
            return 0
        if "AlreadyRunningBackfill" in said or "Another backfill is running" in said:
            logger.info("a history backfill is already running")
            return 0
        if "not find dag" not in said.lower() or time.monotonic() > deadline:
            logger.error("could not create the history backfill: %s", said[-2000:])
            return 1
        time.sleep(10)  # the dag-processor has not parsed the new DAG yet


def start_history_request(config: StackConfig) -> bool:
    """From `make up`, offline only: start the one-shot in the background (Airflow's
    environment, its own log ``history-backfill.log``). True if it was started."""
    days = history_days(config.env)
    if not config.simulated or days == 0:
        return False
    from moonwatch.stack.airflow import airflow_env

    process = ManagedProcess(PROCESS_NAME, config.run_dir, config.log_dir)
    argv = [str(config.venv_bin / "python"), "-m", "moonwatch.stack.history", "request"]
    process.start([*argv, str(config.venv_bin / "airflow"), "--days", str(days)],
                  airflow_env(config), cwd=config.airflow_home)  # fmt: skip
    return True


def history_days(env: Mapping[str, str]) -> int:
    """``MOONWATCH_HISTORY_DAYS`` (default 30; 0 turns the offline backfill off, e.g. for a
    benchmark or chaos stack that must measure only the live feed)."""
    raw = env.get(DAYS_ENV, "").strip() or str(HISTORY_DAYS)
    if not raw.isdigit() or int(raw) > 366:
        raise StackError(f"{DAYS_ENV}={raw!r}: give whole days from 0 (off) to 366")
    return int(raw)


def main(argv: list[str] | None = None) -> int:
    """``request <airflow>``: the one-shot `make up` starts. ``backfill --from-date ...
    --to-date ...``: `airflow backfill create` for crypto_quotes_backfill with the local stack's
    Airflow settings (its metadata database is not in an airflow.cfg a shell would find)."""
    import argparse

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m moonwatch.stack.history")
    commands = parser.add_subparsers(dest="command", required=True)
    request = commands.add_parser("request")
    request.add_argument("airflow")
    request.add_argument("--days", type=int, default=HISTORY_DAYS)
    backfill = commands.add_parser("backfill", help="backfill a date range (UTC days)")
    backfill.add_argument("--from-date", required=True, help="first day, e.g. 2026-11-01")
    backfill.add_argument("--to-date", required=True, help="last day, e.g. 2026-11-30")
    backfill.add_argument("--max-active-runs", type=int, default=MAX_ACTIVE_RUNS)
    args = parser.parse_args(argv)
    if args.command == "request":
        return request_history(args.airflow, days=args.days)
    from moonwatch.stack.airflow import airflow_env

    config = StackConfig.from_env()
    command = [str(config.venv_bin / "airflow"), "backfill", "create", "--dag-id", DAG_ID,
               "--from-date", args.from_date, "--to-date", args.to_date,
               "--max-active-runs", str(args.max_active_runs)]  # fmt: skip
    return subprocess.run(command, env=airflow_env(config), check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
