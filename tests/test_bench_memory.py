"""The benchmark's memory floor counts what exiting processes would really free.

Pure logic over a recorded process list (no services): the benchmark itself runs with
`make bench`.
"""

from __future__ import annotations

import re

from bench.common import EXECUTOR_WORKER_ROLE, IDLE_WORKER_ROLE, Process, Section
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
