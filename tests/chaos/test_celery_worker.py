"""A Celery worker killed mid-load (MOONWATCH_EXECUTOR=celery): nothing is lost, and the other
worker carries on. Run by `make chaos` with the other attacks; it starts its own Celery stack.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from bench.common import children_map, process_tree
from moonwatch.stack import celery_executor
from moonwatch.stack.config import StackConfig
from moonwatch.stack.ephemeral import ephemeral_stack
from tests.chaos import harness as h
from tests.chaos.test_attacks import BURST, _count_or_skip, _rows_of

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.slow]

ATTACK = "test_chaos_celery_worker_killed_mid_load"


@pytest.fixture(scope="module")
def celery_stack() -> Iterator[StackConfig]:
    with ephemeral_stack(
        MOONWATCH_EXECUTOR="celery",
        MOONWATCH_SYMBOLS="BTC,ETH,SOL",
        # A task whose worker died stops heartbeating; the scheduler fails that try (and the
        # retry runs on a live worker) after this, not after the default five minutes.
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="60",
    ) as (config, _env):
        yield config


def _worker_running(pid: int, workers: dict[str, int]) -> str | None:
    """The worker whose process tree holds ``pid``."""
    parents = {child: parent for parent, kids in children_map().items() for child in kids}
    while pid > 1:
        for name, worker_pid in workers.items():
            if pid == worker_pid:
                return name
        pid = parents.get(pid, 1)
    return None


def _succeeded_on(config: StackConfig, worker: str, since: datetime) -> int:
    url = config.airflow_db_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        (count,) = conn.execute(
            "select count(*) from task_instance where state = 'success' and hostname like %s"
            " and end_date > %s",
            (f"%-{worker}", since),
        ).fetchone()
    return count


def test_chaos_celery_worker_killed_mid_load(celery_stack: StackConfig) -> None:
    config = celery_stack
    at = h.minute_stamp(900)
    ledger = h.Ledger()
    ledger.produce(config, h.synthetic_quotes(0, BURST, at))
    h.wait_for(lambda: _rows_of(config, 0, at) > 0, "the load to begin", 600, every=0.1)
    session = h.loader_session(config)
    assert session is not None, "no loader process holds a warehouse session"
    workers = {w: celery_executor.worker_process(config, w).pid() for w in celery_executor.WORKERS}
    victim = _worker_running(session[0], {w: p for w, p in workers.items() if p})
    assert victim is not None, f"the loader (pid {session[0]}) runs under no worker {workers}"
    survivor = next(w for w in workers if w != victim)

    # The whole worker at once, as when its machine dies: the worker, its pool, its tasks.
    killed_at = datetime.now(UTC)
    # A task may have left the worker's process group: the whole tree, by parent PID.
    for pid in process_tree(workers[victim]):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    h.wait_for(lambda: h.loader_session_gone(config, session[1]), "its session to end", 60, 0.2)
    committed = _rows_of(config, 0, at)
    _count_or_skip(ATTACK, 0, committed, f"when {victim} was killed")

    # Every acknowledged quote lands once: the load's next try (a live worker) loads the rest.
    h.assert_exactly_once(config, ledger)
    # The other worker never stopped, and kept running tasks after the kill.
    assert celery_executor.worker_process(config, survivor).pid() == workers[survivor]
    h.wait_for(
        lambda: _succeeded_on(config, survivor, killed_at) > 0,
        f"a task to succeed on {survivor} after the kill",
        600,
    )
    h.evidence(
        ATTACK,
        f"{victim} killed -9 mid-load with {committed:,} of {BURST:,} rows committed; the rest "
        f"loaded after; load task (state, try) since: {h.load_tries(config, killed_at)}",
    )
