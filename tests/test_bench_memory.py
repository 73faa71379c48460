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

import pytest

from bench.common import (
    EXECUTOR_WORKER_ROLE,
    IDLE_WORKER_ROLE,
    TASK_ROLE,
    Process,
    Section,
    flatness,
    lasting_anonymous,
    service_processes,
    service_trees,
)
from bench.stack_load import _report_floor


@pytest.mark.parametrize("kept", [0, 1])
def test_the_floor_removes_only_the_private_memory_of_the_extra_workers_and_tasks(
    kept: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bench.stack_load.IDLE_WORKERS_KEPT", kept)
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
    # Every worker and task goes but those kept: their private pages are freed, the pages
    # they shared stay (with the scheduler and any kept worker).
    floor = total - (6 * 15 + 16 + 50) + kept * 15
    assert re.search(rf"holds {floor} MiB", text), text
    # Not the other processes' PSS plus one worker's (120 + 13 + 44), which counts the
    # shared pages of the five removed workers as freed.
    assert "holds 177 MiB" not in text


def test_flatness_counts_the_long_lived_processes_anonymous_memory_not_the_tasks() -> None:
    # The scheduler's tree with a busy worker running a dbt build, and without it a minute
    # later: the same long-lived memory, whichever sample caught the task. Postgres's buffer
    # cache (shared memory) is in its PSS, not in its anonymous memory.
    scheduler = Process("airflow scheduler", 120.0, 90.0, False, pid=10, anonymous=110.0)
    worker = Process(EXECUTOR_WORKER_ROLE, 46.0, 16.0, True, pid=11, anonymous=100.0)
    build = Process("airflow task", 180.0, 150.0, True, pid=12, anonymous=170.0)
    postgres = Process("postgres", 60.0, 5.0, False, shmem=40.0, pid=20, anonymous=4.0)
    busy = {"airflow-scheduler": [scheduler, worker, build], "postgres": [postgres]}
    idle = {
        "airflow-scheduler": [scheduler, worker._replace(role=IDLE_WORKER_ROLE)],
        "postgres": [postgres],
    }

    assert lasting_anonymous(busy) == {
        "airflow-scheduler": {10: 110.0, 11: 100.0},
        "postgres": {20: 4.0},
    }
    assert lasting_anonymous(idle)["airflow-scheduler"] == {10: 110.0, 11: 100.0}
    assert build.is_task and not worker.is_task and not scheduler.is_task

    samples = [lasting_anonymous(busy if i % 2 else idle) for i in range(9)]
    flat = flatness(samples)
    assert flat["airflow-scheduler"].growth == 1.0
    assert flat["postgres"].growth == 1.0


def _scheduler(*workers: int, scheduler: float = 150.0) -> dict[str, dict[int, float]]:
    """One sample of the scheduler's long-lived memory: itself (PID 1) and its workers, each
    worker's PID with 45 MiB."""
    return {"airflow-scheduler": {1: scheduler, **{pid: 45.0 for pid in workers}}}


def test_flatness_compares_each_process_with_itself_not_the_pool_size() -> None:
    # The executor's pool: two workers through the window, a third forked in the last third
    # as tasks wait (and one let go in the middle). The sum grows by a worker's 45 MiB.
    samples = [_scheduler(2, 3, 4) for _ in range(3)]
    samples += [_scheduler(2, 3, 4), _scheduler(2, 3), _scheduler(2, 3)]
    samples += [_scheduler(2, 3, 5), _scheduler(2, 3, 5), _scheduler(2, 3, 5, 6)]
    f = flatness(samples)["airflow-scheduler"]
    assert (f.middle, f.last) == (240.0, 285.0)  # what the old measure compared: 1.19
    assert f.processes == (3, 4)
    assert (f.survivors, f.survivors_middle, f.survivors_last) == (3, 240.0, 240.0)
    assert f.growth == 1.0


def test_flatness_sees_a_process_that_keeps_what_it_takes() -> None:
    # The scheduler itself grows 150 -> 210 MiB while its pool changes around it: the growth
    # is the scheduler's, not diluted by or blamed on the pool.
    sizes = [150.0, 150.0, 150.0, 150.0, 155.0, 160.0, 190.0, 200.0, 210.0]
    pools = [(2,), (2,), (2, 3), (2,), (2, 3), (2,), (2, 3), (2, 3, 4), (2,)]
    samples = [_scheduler(*pool, scheduler=size) for size, pool in zip(sizes, pools, strict=True)]
    f = flatness(samples)["airflow-scheduler"]
    assert f.survivors == 2  # the scheduler and worker 2
    assert f.growth == (200.0 + 45) / (155.0 + 45)
    assert f.growth > 1.1
    # A service that restarted in the window has no process through both thirds: no verdict.
    restarted = [{"dashboard": {100 if i < 5 else 101: 180.0}} for i in range(9)]
    assert flatness(restarted)["dashboard"].growth is None
    assert flatness(samples[:5]) == {}


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


def test_a_task_process_is_told_from_its_worker_by_where_it_runs(tmp_path) -> None:
    # Airflow's task process is forked from its executor worker and keeps the worker's title;
    # only its place in the tree says it is a task (its memory goes when the task ends). Real
    # processes with Airflow's titles: a scheduler, its worker, the worker's task.
    title = "airflow worker -- LocalExecutor: 0195b2c4"
    worker = (
        "import subprocess, time\n"
        f"task = subprocess.Popen([{title!r}, '60'], executable='sleep')\n"
        "print(task.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    scheduler = (
        "import subprocess, time\n"
        f"w = subprocess.Popen([{title!r}, '-c', {worker!r}], executable={sys.executable!r},"
        " stdout=subprocess.PIPE, text=True)\n"
        "print(w.pid, w.stdout.readline().strip(), flush=True)\n"
        "time.sleep(60)\n"
    )
    root = subprocess.Popen(
        ["airflow scheduler", "-c", scheduler],
        executable=sys.executable,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        worker_pid, task_pid = map(int, root.stdout.readline().split())
        (tmp_path / "airflow-scheduler.pid").write_text(f"{root.pid} 0")
        found = {p.pid: p for p in service_processes(tmp_path)["airflow-scheduler"]}
        assert found[root.pid].role == "airflow scheduler" and not found[root.pid].under_worker
        assert found[worker_pid].role == EXECUTOR_WORKER_ROLE and not found[worker_pid].is_task
        assert found[task_pid].role == TASK_ROLE and found[task_pid].is_task
        assert set(lasting_anonymous({"s": list(found.values())})["s"]) == {root.pid, worker_pid}
    finally:
        os.killpg(root.pid, signal.SIGKILL)
        root.wait()


_FORKING_PARENT = """
import os, sys, time

def touched(mib):
    block = bytearray(mib << 20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return block

heap = [touched(64)]
child = os.fork()
if child == 0:
    time.sleep(60)  # shares the parent's heap, touches nothing
    os._exit(0)
print(child, flush=True)
for line in sys.stdin:
    if line.strip() == "reap":
        os.kill(child, 9)
        os.waitpid(child, 0)
    else:
        heap.append(touched(64))
    print("done", flush=True)
"""


def test_growth_is_what_a_process_keeps_not_a_forked_childs_exit(tmp_path) -> None:
    # As the scheduler and the LocalExecutor's workers forked from it: a real process with a
    # 64 MiB heap forks a child that shares it. When the child exits, the parent's PSS takes on
    # the whole of the shared pages, which the flatness verdict once read as the scheduler's
    # growth; its anonymous memory does not move. When it allocates, it does.
    root = subprocess.Popen(
        [sys.executable, "-c", _FORKING_PARENT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )

    def sample(command: str | None = None) -> tuple[Process, dict[str, dict[int, float]]]:
        if command:
            root.stdin.write(command + "\n")
            root.stdin.flush()
            assert root.stdout.readline().strip() == "done"
        processes = service_processes(tmp_path)
        own = {p.pid: p for p in processes["airflow-scheduler"]}[root.pid]
        return own, lasting_anonymous(processes)

    try:
        child = int(root.stdout.readline())
        (tmp_path / "airflow-scheduler.pid").write_text(f"{root.pid} 0")
        with_child, first = sample()
        assert set(first["airflow-scheduler"]) == {root.pid, child}
        alone, second = sample("reap")
        assert alone.pss - with_child.pss > 24  # half the shared 64 MiB came back to it
        assert abs(alone.anonymous - with_child.anonymous) < 4
        grown, third = sample("grow")
        assert grown.anonymous - alone.anonymous > 56

        # The window's thirds: the middle one with the child, the last without it, then the
        # last one after the parent kept 64 MiB more.
        f = flatness([first] * 6 + [second] * 3)["airflow-scheduler"]
        assert f.survivors == 1 and f.growth < 1.05
        assert flatness([first] * 6 + [third] * 3)["airflow-scheduler"].growth > 1.3
    finally:
        os.killpg(root.pid, signal.SIGKILL)
        root.wait()
