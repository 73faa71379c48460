"""Tools the chaos suite uses to attack a running stack and to check what survived."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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


NaturalKey = tuple[int, str, datetime]


def natural_key(message: QuoteMessage) -> NaturalKey:
    return (message.coin_id, message.quote_currency, message.last_updated)


@dataclass
class Ledger:
    """Every message an attack produced and the broker acknowledged, by natural key.

    The primary key already forbids two rows per key, so counting rows per key cannot show a
    doubled or lost message; comparing raw with this ledger can: every produced message must be
    there once, with the content that was produced, and nothing else for these coins.
    """

    sent: dict[NaturalKey, QuoteMessage] = field(default_factory=dict)

    def produce(self, config: StackConfig, messages: list[QuoteMessage]) -> int:
        delivered = produce(config, messages)  # raises unless every message was acknowledged
        self.sent.update((natural_key(m), m) for m in messages)
        return delivered

    def coin_range(self) -> range:
        coins = [key[0] for key in self.sent]
        return range(min(coins), max(coins) + 1)


def ledger_mismatches(config: StackConfig, ledger: Ledger) -> dict[str, list[NaturalKey]]:
    """Raw against the ledger, for the ledger's coins and minutes: what is missing, what is there
    that nobody produced, and what is there with other content than produced."""
    coins, minutes = ledger.coin_range(), sorted({key[2] for key in ledger.sent})
    rows = fetch(
        config,
        "select coin_id, quote_currency, last_updated, message from raw.crypto_quotes"
        " where coin_id between %s and %s and last_updated = any(%s)",
        (coins.start, coins.stop - 1, minutes),
    )
    # As JSON, the way the loader reads a message (the contract is strict about Python types).
    stored = {(r[0], r[1], r[2]): QuoteMessage.model_validate_json(json.dumps(r[3])) for r in rows}
    sent = ledger.sent
    return {
        "missing": sorted(k for k in sent if k not in stored),
        "unexpected": sorted(k for k in stored if k not in sent),
        "altered": sorted(k for k in sent if k in stored and stored[k] != sent[k]),
    }


def assert_exactly_once(config: StackConfig, ledger: Ledger, timeout: float = 900) -> None:
    """Wait until raw holds as many of the ledger's keys as were produced, then compare."""
    wait_for(
        lambda: not ledger_mismatches(config, ledger)["missing"],
        f"all {len(ledger.sent)} produced quotes in raw",
        timeout=timeout,
        every=3,
    )
    problems = ledger_mismatches(config, ledger)
    summary = {what: (len(keys), keys[:3]) for what, keys in problems.items() if keys}
    assert not summary, f"raw differs from what was produced: {summary}"


# Per-run evidence (timing of each attack, what a crash lost), written to docs/RELIABILITY.md.
EVIDENCE: list[tuple[str, str]] = []


def evidence(attack: str, text: str) -> None:
    EVIDENCE.append((attack, text))


def loader_session_gone(config: StackConfig, client_port: int) -> bool:
    return not fetch(
        config, "select 1 from pg_stat_activity where client_port = %s", (client_port,)
    )


def loader_session(config: StackConfig) -> tuple[int, int] | None:
    """(PID, client port) of the process running consume_and_load, if one holds a session."""
    rows = fetch(
        config,
        "select client_port from pg_stat_activity where application_name = 'moonwatch-loader'"
        " and client_port is not null limit 1",
        (),
    )
    if not rows:
        return None
    pid = pid_owning_local_port(rows[0][0])
    return (pid, rows[0][0]) if pid else None


def api(config: StackConfig, method: str, path: str, **kwargs: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {airflow_token(config)}"}
    response = requests.request(
        method, f"{config.airflow_url}/api/v2{path}", headers=headers, timeout=10, **kwargs
    )
    response.raise_for_status()
    return response


def set_paused(config: StackConfig, dag_id: str, paused: bool) -> None:
    api(config, "PATCH", f"/dags/{dag_id}", json={"is_paused": paused})


def load_in_flight(config: StackConfig) -> bool:
    """A load task queued or running, or a loader session open."""
    response = api(
        config,
        "GET",
        "/dags/crypto_quotes_load/dagRuns/~/taskInstances",
        params={"task_id": "load_quotes", "state": ["queued", "running"], "limit": 10},
    )
    return bool(response.json()["task_instances"]) or loader_session(config) is not None


def load_tries(config: StackConfig, since: datetime) -> list[tuple[str, int]]:
    """(state, try_number) of every load task started since ``since``."""
    response = api(
        config,
        "GET",
        "/dags/crypto_quotes_load/dagRuns/~/taskInstances",
        params={"task_id": "load_quotes", "start_date_gte": since.isoformat(), "limit": 100},
    )
    return [(ti["state"], ti["try_number"]) for ti in response.json()["task_instances"]]


def fetch(config: StackConfig, query: str, params: tuple) -> list[tuple]:
    """All rows of one parameterised query on the warehouse, as the loader role."""
    with psycopg.connect(config.warehouse_url) as conn:
        return conn.execute(query, params).fetchall()


def keys_in_raw(config: StackConfig, coin_ids: range, at: datetime) -> dict[tuple[int, str], int]:
    """(coin_id, last_updated) → number of rows, for the given synthetic coins and minute."""
    rows = fetch(
        config,
        "select coin_id, last_updated, count(*) from raw.crypto_quotes"
        " where coin_id between %s and %s and last_updated = %s group by 1, 2",
        (coin_ids.start, coin_ids.stop - 1, at),
    )
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
    session = loader_session(config)
    return session[0] if session else None


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
    response = api(
        config,
        "GET",
        f"/dags/{dag_id}/dagRuns/~/taskInstances",
        params={"task_id": task_id, "start_date_gte": since.isoformat(), "limit": 100},
    )
    return [ti["state"] for ti in response.json()["task_instances"]]
