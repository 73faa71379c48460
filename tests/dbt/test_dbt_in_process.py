"""dbt run in this process (``run_dbt(..., in_process=True)``, the per-minute build's way in its
task) behaves as a dbt process does: same exit codes and messages, nothing left behind in the
process; and the executor that imports dbt before its workers fork
(``moonwatch.preloading_executor``). The CPU it saves is measured by the benchmark's CPU at
rest, not here; the build's real runs are in tests/dags/test_transform_dag_runs.py."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from moonwatch.dbt.runner import run_dbt
from moonwatch.stack.airflow import LOCAL_EXECUTOR
from moonwatch.stack.process import free_port


@pytest.mark.parametrize("in_process", [False, True], ids=["dbt process", "in process"])
def test_in_process_dbt_gives_a_dbt_process_exit_codes_and_leaves_nothing_behind(
    tmp_path: Path, in_process: bool
) -> None:
    before = (dict(os.environ), Path.cwd(), gc.isenabled())

    usage = run_dbt(
        ["no-such-command"], needs_warehouse=False, in_process=in_process, target_path=tmp_path
    )
    # Nothing listens on a fresh free port: the warehouse is unreachable.
    url = f"postgresql://moonwatch:s3cret-pw@127.0.0.1:{free_port()}/moonwatch"
    unreachable = run_dbt(
        ["run", "--select", "pipeline_health"],
        warehouse_url=url,
        in_process=in_process,
        target_path=tmp_path,
        log_path=tmp_path,
    )

    assert (usage.returncode, usage.ok) == (2, False)
    assert "No such command 'no-such-command'" in usage.output
    assert unreachable.returncode == 2
    assert "Connection refused" in unreachable.output
    # The connection's variables (the password among them) were the command's only.
    assert (dict(os.environ), Path.cwd(), gc.isenabled()) == before
    assert "s3cret-pw" not in unreachable.output


class _Interrupted(Exception):
    """Stands in for what Airflow raises in a task at its execution_timeout."""


def test_in_process_dbt_raises_again_what_dbt_did_not_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dbt's runner catches everything; a task's timeout must still end the task as one, not
    pass for "dbt could not run". The interruption is raised where dbt reads the project (a
    timer's moment would be a race), through dbt's own module, as a timeout's signal would."""
    import dbt.cli.requires

    def interrupted(*_args, **_kwargs):
        raise _Interrupted("execution_timeout")

    monkeypatch.setattr(dbt.cli.requires, "parse_manifest", interrupted)
    with pytest.raises(_Interrupted):
        run_dbt(["parse"], needs_warehouse=False, in_process=True, target_path=tmp_path)
    # The same command with dbt's own error (a usage error) is exit 2, not raised.
    assert (
        run_dbt(["parse", "--no-such-flag"], needs_warehouse=False, in_process=True).returncode == 2
    )


_EXECUTOR_PROBE = """
import logging, sys
from airflow.executors.executor_loader import ExecutorLoader
from airflow.executors.local_executor import LocalExecutor

seen = {}
LocalExecutor._spawn_workers_with_gc_freeze = lambda self, n: seen.update(
    dbt="dbt.cli.main" in sys.modules
)
executor_cls, _ = ExecutorLoader.import_default_executor_cls()  # as the scheduler does
root = logging.getLogger()
handlers = list(root.handlers)
assert "dbt.cli.main" not in sys.modules
executor_cls(parallelism=1).start()
print("probe:", issubclass(executor_cls, LocalExecutor), seen["dbt"], root.handlers == handlers)
"""


def test_the_stacks_executor_imports_dbt_before_its_workers_fork() -> None:
    # A fresh interpreter: this one may have imported dbt already. What forks the workers is
    # replaced by a probe: what it would fork from has dbt imported.
    done = subprocess.run(
        [sys.executable, "-c", _EXECUTOR_PROBE],
        env={**os.environ, "AIRFLOW__CORE__EXECUTOR": LOCAL_EXECUTOR},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # A LocalExecutor, dbt imported before the fork, the scheduler's logging untouched.
    probe = next(line for line in done.stdout.splitlines() if line.startswith("probe:"))
    assert probe.split() == ["probe:", "True", "True", "True"]
