"""The benchmark's memory floor counts what exiting processes would really free.

Pure logic over a recorded process list (no services), and which processes a service's
memory counts: the benchmark itself runs with `make bench`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from bench.common import (
    EXECUTOR_WORKER_ROLE,
    IDLE_WORKER_ROLE,
    Process,
    Section,
    lasting_private,
    service_trees,
)
from bench.stack_load import _report_floor


def test_the_floor_removes_only_the_private_memory_of_the_extra_workers_and_tasks() -> None:
    # A scheduler and six idle workers forked from it share most pages: each worker's PSS
    # (44) is mostly its share of them, and only 15 MiB is its own. A task runs under a
    # seventh, busy worker.
    idle = Process(IDLE_WORKER_ROLE, 44.0, 15.0, True)
    processes = {
        "airflow-scheduler": [
            Process("airflow scheduler", 120.0, 90.0, False),
            *[idle] * 6,
            Process(EXECUTOR_WORKER_ROLE, 46.0, 16.0, True),
            Process("airflow task", 80.0, 50.0, True),
        ],
        "postgres": [Process("postgres", 13.0, 5.0, False)],
    }
    section = Section("t")
    _report_floor(section, processes)
    text = " ".join(section.lines)
    total = 120 + 6 * 44 + 46 + 80 + 13
    assert f"Total {total:.0f} MiB" in text
    # Every worker and task goes but one idle worker: their private pages are freed, the
    # pages they shared stay (with the scheduler and the kept worker).
    floor = total - (6 * 15 + 16 + 50) + 15
    assert re.search(rf"holds {floor} MiB", text), text
    # Not the other processes' PSS plus one worker's (120 + 13 + 44), which counts the
    # shared pages of the five removed workers as freed.
    assert "holds 177 MiB" not in text


def test_flatness_counts_the_long_lived_processes_outside_shared_memory_not_the_tasks() -> None:
    # The scheduler's tree with a busy worker running a dbt build, and without it a minute
    # later: the same long-lived memory, whichever sample caught the task.
    scheduler = Process("airflow scheduler", 120.0, 90.0, False)
    worker = Process(EXECUTOR_WORKER_ROLE, 46.0, 16.0, True)
    build = Process("airflow task", 180.0, 150.0, True)
    postgres = Process("postgres", 60.0, 5.0, False, shmem=40.0)
    busy = {"airflow-scheduler": [scheduler, worker, build], "postgres": [postgres]}
    idle = {"airflow-scheduler": [scheduler, worker._replace(role=IDLE_WORKER_ROLE)]}

    assert lasting_private(busy) == {"airflow-scheduler": 166.0, "postgres": 20.0}
    assert lasting_private(idle)["airflow-scheduler"] == 166.0
    assert build.is_task and not worker.is_task and not scheduler.is_task


def test_a_service_whose_process_another_service_started_is_counted_once(tmp_path) -> None:
    # As the Airflow fork server and the components it forks: both have PID files, and the
    # component (with a process of its own below it) is the server's child. Real processes.
    starter = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen(['sh', '-c', 'sleep 60 & wait'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        component = int(server.stdout.readline())
        (tmp_path / "forkserver.pid").write_text(f"{server.pid} 0")
        (tmp_path / "component.pid").write_text(f"{component} 0")
        deadline = time.monotonic() + 10
        while len((trees := service_trees(tmp_path)).get("component", [])) != 2:
            assert time.monotonic() < deadline, trees
            time.sleep(0.05)
        assert trees["forkserver"] == [server.pid]
        assert sorted(trees["component"])[0] == component
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
