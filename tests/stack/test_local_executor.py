"""The stack's LocalExecutor forks workers as tasks need them and lets the idle surplus go
(``moonwatch.preloading_executor``, its rules in ``moonwatch.worker_pool``). The memory it
saves at rest is measured by ``make bench`` (PSS at rest); here, that the pool grows and
shrinks with real worker processes, and that every task is still run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from moonwatch.worker_pool import IDLE_WORKERS_KEPT, workers_to_fork, workers_to_retire


@pytest.mark.parametrize(
    ("unread", "idle", "alive", "parallelism", "fork"),
    [
        (0, 1, 1, 6, 0),  # nothing waiting
        (1, 1, 1, 6, 0),  # the idle worker takes it
        (3, 1, 1, 6, 2),  # two more for the two nobody can take
        (5, 0, 4, 6, 2),  # never past parallelism
        (2, 0, 6, 6, 0),  # at parallelism: the tasks wait for a worker
        (1, 3, 3, 6, 0),
    ],
)
def test_workers_are_forked_only_for_tasks_no_idle_worker_can_take(
    unread: int, idle: int, alive: int, parallelism: int, fork: int
) -> None:
    assert workers_to_fork(unread, idle, alive, parallelism) == fork


@pytest.mark.parametrize(
    ("unread", "idle", "kept", "retire"),
    [(0, 4, 1, 3), (0, 1, 1, 0), (0, 0, 1, 0), (1, 4, 1, 0), (0, 4, 2, 2), (0, 2, 0, 2)],
)
def test_only_workers_idle_all_along_beyond_the_kept_ones_go_and_none_while_work_waits(
    unread: int, idle: int, kept: int, retire: int
) -> None:
    assert workers_to_retire(unread, idle, kept) == retire


# A fresh interpreter with the stack's executor and real forked workers. Running a workload needs
# Airflow's API server (the task SDK supervises the task through it), which cannot run here:
# BaseExecutor.run_workload is replaced, before the workers fork, by one that only sleeps, so
# the pool is busy for as long as the test says.
_POOL_PROBE = """
import json, os, sys, time
from types import SimpleNamespace
from airflow.executors.base_executor import BaseExecutor
import moonwatch.preloading_executor as pe
import moonwatch.worker_pool as pool

BaseExecutor.run_workload = staticmethod(lambda workload, **_: time.sleep(workload.seconds))
pool.RETIRE_AFTER_SECONDS = 0.0
pool.IDLE_WORKERS_KEPT = KEPT = int(sys.argv[1])
seen = {}

def until(check, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            print(f"timed out waiting for {what}: {seen}", flush=True)
            os._exit(3)  # not sys.exit: that would wait for the workers
        ex._check_workers()
        time.sleep(0.05)

ex = pe.PreloadingLocalExecutor(parallelism=3)
ex.start()
until(lambda: ex.activity_queue.waiting.value == KEPT, "the kept workers to wait")
seen["at_start"] = len(ex.workers)

work = [SimpleNamespace(key=f"t{i}", seconds=1.5, running_state=None, success_state="success",
                        failure_state="failed", display_name=f"t{i}") for i in range(4)]
for w in work:
    ex.queued_tasks[w.key] = w
ex._process_workloads(work)
seen["for_four_tasks"] = len(ex.workers)

def finished():
    ex._read_results()
    return len(ex.event_buffer) == len(work)

until(finished, "every task's result")
seen["results"] = sorted(state for state, _ in ex.event_buffer.values())
until(lambda: len(ex.workers) == KEPT, "the surplus to go")
seen["after_idling"] = len(ex.workers)
pids = list(ex.workers)
seen["kept_waiting"] = ex.activity_queue.waiting.value
ex.end()
seen["alive_after_end"] = sum(1 for pid in pids if os.path.exists(f"/proc/{pid}"))
print("probe:", json.dumps(seen))
"""


@pytest.mark.slow
@pytest.mark.parametrize("kept", sorted({IDLE_WORKERS_KEPT, 1}))
def test_the_pool_grows_for_waiting_tasks_and_shrinks_back_when_idle(kept: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _POOL_PROBE, str(kept)],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("probe:"))
    seen = json.loads(line.removeprefix("probe:"))
    assert seen["at_start"] == kept  # Airflow's own LocalExecutor forks all 3 here
    assert seen["for_four_tasks"] == 3  # the kept ones + those forked: parallelism caps it
    assert seen["results"] == ["success"] * 4  # the fourth waited for a worker, and ran
    assert seen["after_idling"] == seen["kept_waiting"] == kept
    assert seen["alive_after_end"] == 0
