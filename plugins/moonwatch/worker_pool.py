"""How many workers the stack's LocalExecutor keeps (``moonwatch.preloading_executor``): the
rules for forking and letting go, and the task queue that counts its idle workers.

Apart from the executor, with no Airflow import, so the rules are plain functions to test and
the benchmark can name the settings it measured.
"""

from __future__ import annotations

import ctypes
import multiprocessing
from multiprocessing.queues import SimpleQueue

# Idle workers kept ready for the next task (a fork from the scheduler costs milliseconds).
IDLE_WORKERS_KEPT = 1
# The window over which the fewest idle workers seen, less those kept, is let go at its end:
# shorter than the minute, so the extra workers the per-minute burst of tasks forks go before
# the next one. Forking them again costs milliseconds; keeping them through the minute (a 90 s
# window) held about 50 MiB more PSS at rest with 10 coins (two idle workers' private pages),
# measured on the stack at rest, 36 samples each way.
RETIRE_AFTER_SECONDS = 20.0


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
