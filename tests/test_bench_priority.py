"""The measurements beside the stack's load window yield the CPU to it, and only they do.

Real threads and a real child process on this machine; nothing is mocked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from bench.common import NEIGHBOUR_NICENESS, yield_to_the_stack


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_the_neighbours_and_what_they_start_run_lower_than_the_stack_started_before() -> None:
    seen: dict[str, int] = {}
    stack_may_go_on, stack_started = threading.Event(), threading.Event()

    def stack() -> None:  # started first, as the bench starts the stack's measurement
        seen["stack before"] = _niceness()
        stack_started.set()
        stack_may_go_on.wait(10)
        seen["stack after"] = _niceness()
        seen["stack's process"] = int(_child_niceness())

    def neighbours() -> None:
        stack_started.wait(10)
        yield_to_the_stack()
        seen["neighbour"] = _niceness()
        seen["neighbour's process"] = int(_child_niceness())
        stack_may_go_on.set()

    threads = [threading.Thread(target=stack), threading.Thread(target=neighbours)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)

    base = seen["stack before"]
    lowered = min(19, base + NEIGHBOUR_NICENESS)
    assert lowered > base, "this test needs room to lower the priority (run it below nice 19)"
    assert seen["neighbour"] == lowered
    assert seen["neighbour's process"] == lowered
    assert seen["stack after"] == base
    assert seen["stack's process"] == base


def _child_niceness() -> str:
    return subprocess.run(
        [sys.executable, "-c", "import os; print(os.nice(0))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
