"""How many workers the stack's LocalExecutor keeps (``moonwatch.preloading_executor``): the
rules for forking and letting go, and the task queue that counts its idle workers.

Apart from the executor, with no Airflow import, so the rules are plain functions to test and
the benchmark can name the settings it measured.
"""

from __future__ import annotations

import ctypes
import multiprocessing
from multiprocessing.queues import SimpleQueue

# Idle workers kept ready for the next task: none. A fork from the scheduler costs
# milliseconds, and the executor forks in the same heartbeat that queues the task; a kept
# worker held 40-50 MiB of its own after the tasks it ran. Median PSS of the stack at rest with
# 10 coins (36 samples 10 s apart): 1211 MiB keeping one, 1164 keeping none.
IDLE_WORKERS_KEPT = 0
# The window over which the fewest idle workers seen, less those kept, is let go at its end:
# a few seconds, so the extra workers the per-minute burst of tasks forks go once it is over
# (a task that follows another within the burst still finds its worker). Forking them again
# costs milliseconds. Median PSS of the stack at rest with 10 coins, 36 samples 10 s apart
# each way, same conditions: 1300 MiB with a 90 s window (longer than the minute: every
# worker kept for good), 1248 with 20 s, 1211 with 5 s.
RETIRE_AFTER_SECONDS = 5.0


class WaitCountingQueue(SimpleQueue):
    """The workers' task queue; ``waiting`` counts the processes blocked in :meth:`get`: the
    idle workers."""

    def __init__(self) -> None:
        context = multiprocessing.get_context()
        super().__init__(ctx=context)
        self.waiting = context.Value(ctypes.c_int, 0)

    def __getstate__(self):
        return (*super().__getstate__(), self.waiting)

    def __setstate__(self, state) -> None:
        *queue, self.waiting = state
        super().__setstate__(tuple(queue))

    def get(self):
        with self.waiting.get_lock():
            self.waiting.value += 1
        try:
            return super().get()
        finally:
            with self.waiting.get_lock():
                self.waiting.value -= 1


def workers_to_fork(unread: int, idle: int, alive: int, parallelism: int) -> int:
    """Workers to add for ``unread`` tasks nobody has taken yet, given ``idle`` workers waiting
    for work and ``alive`` workers in all."""
    return max(0, min(unread - idle, parallelism - alive))


def workers_to_retire(unread: int, fewest_idle: int, kept: int = IDLE_WORKERS_KEPT) -> int:
    """Workers beyond ``kept`` that were idle all along (``fewest_idle``: the fewest idle at
    any check of the window) and may go: none while a task waits to be taken."""
    return 0 if unread > 0 else max(0, fewest_idle - kept)
