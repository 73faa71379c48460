"""Airflow's LocalExecutor with dbt imported before its workers fork, and only as many workers
as the work needs.

The LocalExecutor forks its worker processes from the scheduler, and each worker forks a
process per task: a module the scheduler has imported is already there, free, in every task.
The per-minute ``crypto_transform`` build spends more CPU importing dbt (about 2 s, measured)
than building the marts of a minute of quotes; imported here once, at the scheduler's start,
it costs no task anything, and the build runs dbt in its own task process
(``moonwatch.dbt.build``) instead of starting a dbt process every minute. The price is memory:
dbt's modules in the scheduler, shared with the forks that do not write to them: about
110 MiB more PSS at rest, measured by ``make bench`` beside the CPU it saves.

Airflow's LocalExecutor forks ``parallelism`` workers at its start and keeps every one for the
life of the scheduler, each holding ~30 MiB of its own once it has run a task: 6 idle workers
were a fifth of the stack's memory at rest, where the work is a handful of tasks a minute,
a few of them at once at most. Here the pool starts with ``IDLE_WORKERS_KEPT`` idle workers
(none), forks more the moment tasks are waiting with no idle worker to take them (up to
``parallelism``), and lets go the workers that stayed idle through a whole
``RETIRE_AFTER_SECONDS`` beyond those kept (the rules: ``moonwatch.worker_pool``). The queue
the workers read counts the workers waiting on it, so the executor knows how many are idle.

``moonwatch.stack`` and the compose files run Airflow with this executor
(``AIRFLOW__CORE__EXECUTOR``, ``moonwatch.stack.airflow.LOCAL_EXECUTOR``); under any other
executor the build imports dbt itself, in its task.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import multiprocessing
import time
from multiprocessing.queues import SimpleQueue

from airflow.executors.local_executor import LocalExecutor

from moonwatch import worker_pool
from moonwatch.worker_pool import WaitCountingQueue, workers_to_fork, workers_to_retire

logger = logging.getLogger(__name__)

# What the tasks would otherwise import on every run, at a cost worth holding in memory.
PRELOADED_MODULES = ("dbt.cli.main",)


def preload(modules: tuple[str, ...] = PRELOADED_MODULES) -> list[str]:
    """Import ``modules`` into this process; the names imported. One that cannot be imported is
    logged and left to the tasks (they import it themselves, and fail there if it is missing).

    dbt's import adds a handler to the root logger when it has none; the process's logging is
    left as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    done = []
    try:
        for name in modules:
            try:
                importlib.import_module(name)
            except ImportError as e:
                logger.warning("not preloading %s for the tasks: %s", name, e)
            else:
                done.append(name)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return done


class PreloadingLocalExecutor(LocalExecutor):
    """``LocalExecutor`` whose workers, and so every task process, start with
    :data:`PRELOADED_MODULES` imported, and whose workers are forked as tasks need them and
    let go when idle (``moonwatch.worker_pool``)."""

    def start(self) -> None:
        logger.info("preloaded for the tasks: %s", ", ".join(preload()) or "nothing")
        # LocalExecutor.start() with a counting task queue, forking the kept idle workers only
        # (Airflow's forks all `parallelism` of them here).
        self.activity_queue = WaitCountingQueue()
        self.result_queue = SimpleQueue(ctx=multiprocessing.get_context())
        self.workers = {}
        self._unread_messages = multiprocessing.Value(ctypes.c_uint)
        self._window_start, self._fewest_idle = time.monotonic(), self.parallelism
        self._spawn_workers_with_gc_freeze(min(worker_pool.IDLE_WORKERS_KEPT, self.parallelism))

    def _check_workers(self) -> None:
        """Reap exited workers; fork workers for tasks no idle worker can take; at the end of
        each ``worker_pool.RETIRE_AFTER_SECONDS`` window, let go the workers idle throughout it
        beyond those kept."""
        for pid, proc in list(self.workers.items()):
            if not proc.is_alive():
                proc.close()
                del self.workers[pid]
        with self._unread_messages:
            unread = self._unread_messages.value
        idle = self.activity_queue.waiting.value
        fork = workers_to_fork(unread, idle, len(self.workers), self.parallelism)
        if fork:
            self._spawn_workers_with_gc_freeze(fork)
        self._fewest_idle = min(self._fewest_idle, idle)
        if time.monotonic() - self._window_start < worker_pool.RETIRE_AFTER_SECONDS:
            return
        surplus = workers_to_retire(unread, self._fewest_idle)
        if surplus:
            logger.info("letting %d idle executor worker(s) go", surplus)
            for _ in range(surplus):
                self.activity_queue.put(None)  # LocalExecutor's worker exits on None
        self._window_start, self._fewest_idle = time.monotonic(), self.parallelism
