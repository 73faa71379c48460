"""Airflow's LocalExecutor with dbt imported before its workers fork.

The LocalExecutor forks its worker processes from the scheduler, and each worker forks a
process per task: a module the scheduler has imported is already there, free, in every task.
The per-minute ``crypto_transform`` build spends more CPU importing dbt (about 2 s, measured)
than building the marts of a minute of quotes; imported here once, at the scheduler's start,
it costs no task anything, and the build runs dbt in its own task process
(``moonwatch.dbt.build``) instead of starting a dbt process every minute. The price is memory:
dbt's modules in the scheduler, shared with the forks that do not write to them: about
110 MiB more PSS at rest, measured by ``make bench`` beside the CPU it saves.

``moonwatch.stack`` and the compose files run Airflow with this executor
(``AIRFLOW__CORE__EXECUTOR``, ``moonwatch.stack.airflow.LOCAL_EXECUTOR``); under any other
executor the build imports dbt itself, in its task.
"""

from __future__ import annotations

import importlib
import logging

from airflow.executors.local_executor import LocalExecutor

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
    :data:`PRELOADED_MODULES` imported."""

    def start(self) -> None:
        logger.info("preloaded for the tasks: %s", ", ".join(preload()) or "nothing")
        super().start()
