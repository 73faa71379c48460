"""The per-minute quotes build as one plain task: one ``dbt build`` of the quote selection.

``crypto_transform`` runs this on every quote load. As a Cosmos watcher build it was ~18 task
instances a run (a producer, a deferred sensor per model and test, the publish task), each a
task process on 2 cores: 38-53 s for a few hundred rows, and most of the stack's CPU at rest.
Here it is one task, one dbt invocation, and the same dbt command: the quote models and their
per-build data tests (``--exclude tag:audit``; unit tests left to CI), so a failing test still
fails the run. The reference and audit builds keep their per-node view.

dbt keeps its target folder between runs (:func:`state_dir`), so each build re-reads only the
files that changed (partial parsing) instead of parsing the whole project again. The task runs
dbt in its own process (``in_process``): under ``moonwatch.preloading_executor`` dbt is imported
before the task starts, and a build costs about 3 s of CPU instead of 6 (measured at 10 coins).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from moonwatch.dbt.cosmos import QUOTES_SELECTION, SCHEDULED_BUILD_ENV
from moonwatch.dbt.manifest import AUDIT_SELECTOR
from moonwatch.dbt.runner import (
    DbtError,
    DbtResult,
    could_not_run,
    failures,
    run_dbt_in,
    summary,
    tail,
)

logger = logging.getLogger(__name__)

QUOTES_BUILD_ARGS = ("build", "--select", *QUOTES_SELECTION, "--exclude", AUDIT_SELECTOR)
# dbt's own debug log file would repeat, at length, what the task log already holds (the runner
# logs dbt's output), and grow by a file a build; the task log is the one record. Nothing reads
# the build's manifest.json or run_results.json either (its verdict is dbt's exit code and
# output; partial parsing keeps its own file): not writing them saves ~0.3 s of the ~5 s of
# CPU a build costs, every minute.
BUILD_ENV = {**SCHEDULED_BUILD_ENV, "DBT_LOG_LEVEL_FILE": "none", "DBT_WRITE_JSON": "false"}
# A per-minute build that takes this long is stuck (a lock, a hung connection): fail it and
# let the retry (or the next load's run) start again, rather than hold every later run.
BUILD_TIMEOUT_S = 600.0


def state_dir() -> Path:
    """Where dbt keeps the quotes build's target folder between runs: in this Airflow's home
    (one stack, one folder), else the system's temporary folder."""
    home = os.environ.get("AIRFLOW_HOME") or tempfile.gettempdir()
    return Path(home) / "moonwatch-dbt" / "quotes-build"


@contextlib.contextmanager
def _workdir(persistent: Path) -> Iterator[Path]:
    """``persistent``, held with a lock for the build; a fresh temporary folder instead when
    another build holds it (a second Airflow on the same home, a by-hand run): dbt's target
    folder must never be shared by two running builds. The fresh one costs a full parse."""
    persistent.mkdir(parents=True, exist_ok=True)
    with open(persistent / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.warning(
                "%s is in use by another dbt build; building in a fresh folder", persistent
            )
            with tempfile.TemporaryDirectory(prefix="moonwatch-dbt-") as tmp:
                yield Path(tmp)
            return
        yield persistent


def run_quotes_build(
    *, warehouse_url: str | None = None, workdir: Path | None = None, in_process: bool = False
) -> str:
    """``dbt build`` of the quote marts and their per-build tests; dbt's summary line.

    ``in_process`` runs dbt in this process (see :func:`moonwatch.dbt.runner.run_dbt`): for a
    task, whose process ends with the build.

    A failed model or data test raises :class:`DbtError` (permanent: retrying rebuilds the same
    rows and fails the same test) naming what failed; dbt unable to run at all (exit 2: the
    warehouse unreachable) raises :class:`~moonwatch.errors.WarehouseError`, which is retried.
    """
    with _workdir(workdir or state_dir()) as folder:
        result = run_dbt_in(
            folder,
            QUOTES_BUILD_ARGS,
            warehouse_url=warehouse_url,
            extra_env=BUILD_ENV,
            timeout=BUILD_TIMEOUT_S,
            in_process=in_process,
        )
    for line in result.output.splitlines():
        logger.info("%s", line)
    return _verdict(result)


def _verdict(result: DbtResult) -> str:
    if result.returncode not in (0, 1):
        raise could_not_run("build the quote marts", result)
    if not result.ok:
        raise DbtError(
            "The quote marts' build failed: a model or a data test failed (see dbt's lines "
            "above; the models after it were skipped). Failing: "
            + ("; ".join(failures(result.output)) or tail(result.output, 10)),
            result,
        )
    return summary(result.output) or "built"
