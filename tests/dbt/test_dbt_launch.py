"""How dbt is started (moonwatch.dbt.environment.dbt_command): this venv's Python running dbt's
own command line, with the cyclic garbage collector off (the CPU it saves is measured by the
benchmark's CPU at rest, not here)."""

from __future__ import annotations

import os
import subprocess
import sys

from moonwatch.dbt.environment import dbt_command, project_dir

# Imported by Python at start-up from PYTHONPATH, before dbt; reports the collector's state
# when the process exits, after dbt's command has run.
_REPORTER = """
import atexit, gc, sys
atexit.register(lambda: sys.stderr.write(f"gc-enabled-at-exit={gc.isenabled()}\\n"))
"""


def _run(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    (tmp_path / "sitecustomize.py").write_text(_REPORTER)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run(
        [*dbt_command(), *args],
        cwd=project_dir(),  # where run_dbt starts it: the project, with its own tests/ folder
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_dbt_runs_in_this_venvs_python_with_the_collector_off(tmp_path):
    command = dbt_command()
    assert command[0] == sys.executable

    done = _run(["--version"], tmp_path)

    assert done.returncode == 0, done.stderr
    assert "Core:" in done.stdout
    assert "gc-enabled-at-exit=False" in done.stderr


def test_dbt_errors_and_exit_codes_come_through(tmp_path):
    done = _run(["no-such-command"], tmp_path)

    assert done.returncode == 2
    assert "No such command" in done.stderr
