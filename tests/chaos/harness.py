"""Tools the chaos suite uses to attack a running stack and to check what survived."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import requests

from moonwatch.kafka import produce_quotes
from moonwatch.messages import QuoteMessage, build_quote_message
from moonwatch.stack.config import StackConfig
from tests.factories import coin_object
from tests.simulator import sim_control

# Synthetic coins far above CoinMarketCap's real ids, so attacks never collide with the
# simulator's own quotes flowing through the same stack.
SYNTHETIC_BASE = 900_000


def synthetic_quotes(first_coin: int, coins: int, at: datetime) -> list[QuoteMessage]:
    """One quote per synthetic coin at minute ``at`` (its natural key is (coin, USD, at))."""
    messages = []
    for offset in range(coins):
        coin = coin_object(SYNTHETIC_BASE + first_coin + offset, price=1.0 + offset % 997)
        stamp = at.isoformat().replace("+00:00", "Z")
        coin["last_updated"] = coin["quote"]["USD"]["last_updated"] = stamp
        messages.append(build_quote_message(coin, "USD", "simulator", datetime.now(UTC)))
    return messages


def simulator_control(
    config: StackConfig, method: str, path: str, body: dict | None = None
) -> requests.Response:
    """``/_sim/*`` on the stack's simulator, with the token the chaos run started it with."""
    token = config.env["MOONWATCH_SIM_CONTROL_TOKEN"]
    return sim_control(config.simulator_url, method, path, body, token=token)


def produce(config: StackConfig, messages: list[QuoteMessage]) -> int:
    return produce_quotes(messages, config.kafka_bootstrap, "crypto", delivery_timeout_s=60)


def keys_in_raw(config: StackConfig, coin_ids: range, at: datetime) -> dict[tuple[int, str], int]:
    """(coin_id, last_updated) → number of rows, for the given synthetic coins and minute."""
    with psycopg.connect(config.warehouse_url) as conn:
        rows = conn.execute(
            "select coin_id, last_updated, count(*) from raw.crypto_quotes"
            " where coin_id between %s and %s and last_updated = %s group by 1, 2",
            (coin_ids.start, coin_ids.stop - 1, at),
        ).fetchall()
    return {(r[0], r[1].isoformat()): r[2] for r in rows}


def wait_for(check: Callable[[], bool], what: str, timeout: float, every: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (psycopg.Error, requests.RequestException):
            pass
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def minute_stamp(offset_minutes: int = 0) -> datetime:
    """A distinct past minute per attack round, so rounds never share natural keys."""
    base = datetime(2020, 1, 1, tzinfo=UTC)
    return base + timedelta(minutes=offset_minutes)


def _inode_of_local_port(port: int) -> str | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                return fields[9]
    return None


def pid_owning_local_port(port: int) -> int | None:
    inode = _inode_of_local_port(port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                if os.readlink(fd) == target:
                    return int(fd_dir.parent.name)
        except OSError:
            continue
    return None


def loader_pid(config: StackConfig) -> int | None:
    """The PID of the process running consume_and_load (found by its Postgres session)."""
    with psycopg.connect(config.warehouse_url) as conn:
        row = conn.execute(
            "select client_port from pg_stat_activity where application_name = 'moonwatch-loader'"
            " and client_port is not null limit 1"
        ).fetchone()
    return pid_owning_local_port(row[0]) if row else None


def kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def airflow_token(config: StackConfig) -> str:
    response = requests.post(
        f"{config.airflow_url}/auth/token",
        json={"username": "admin", "password": config.secrets["MOONWATCH_AIRFLOW_ADMIN_PASSWORD"]},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def task_states(config: StackConfig, dag_id: str, task_id: str, since: datetime) -> list[str]:
    """States of ``task_id`` in the DAG's runs started after ``since`` (all tries' latest)."""
    headers = {"Authorization": f"Bearer {airflow_token(config)}"}
    response = requests.get(
        f"{config.airflow_url}/api/v2/dags/{dag_id}/dagRuns/~/taskInstances",
        params={"task_id": task_id, "start_date_gte": since.isoformat(), "limit": 100},
        headers=headers,
        timeout=10,
    )
    response.raise_for_status()
    return [ti["state"] for ti in response.json()["task_instances"]]
