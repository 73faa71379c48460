"""dbt on the project: :func:`run_dbt` runs ``dbt <args>`` and says how it went.

A dbt process by default; in this process (``in_process=True``) where dbt is already imported
and the process is one task's own (``moonwatch.preloading_executor``).
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moonwatch.dbt.environment import dbt_command, dbt_env, project_dir
from moonwatch.errors import PermanentError, WarehouseError
from moonwatch.settings import get_settings

logger = logging.getLogger(__name__)


class DbtError(PermanentError):
    """dbt exited non-zero: a model failed, a data test failed, or a source is stale."""

    def __init__(self, message: str, result: DbtResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class DbtResult:
    """What a dbt subprocess did."""

    args: tuple[str, ...]
    returncode: int
    output: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_dbt(
    args: Sequence[str],
    *,
    warehouse_url: str | None = None,
    target_path: Path | str | None = None,
    log_path: Path | str | None = None,
    extra_env: Mapping[str, str] | None = None,
    check: bool = False,
    timeout: float = 900.0,
    needs_warehouse: bool = True,
    in_process: bool = False,
) -> DbtResult:
    """Run ``dbt <args>`` on the project in a subprocess and return its exit code and output.

    With ``in_process`` dbt runs in this process instead (dbt's ``dbtRunner``), with the same
    arguments, environment and result; ``timeout`` is then the caller's (a task's
    ``execution_timeout``). For a process that runs one dbt command and ends, such as a task.

    ``warehouse_url`` defaults to MOONWATCH_WAREHOUSE_URL; with ``needs_warehouse=False``
    (``dbt parse``: the profile's shape is enough) no URL is needed. Give
    ``target_path``/``log_path`` (e.g. temporary folders) so concurrent runs do not share
    ``target/``. With ``check`` a non-zero exit raises :class:`DbtError`.
    """
    connection = {}
    if needs_warehouse:
        connection = dbt_env(warehouse_url or get_settings().require_warehouse_url())
    env = {**os.environ, **connection, **(extra_env or {})}
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    project = project_dir()
    cli_args = [*args, "--project-dir", str(project), "--profiles-dir", str(project)]
    if target_path is not None:
        cli_args += ["--target-path", str(target_path)]
    if log_path is not None:
        cli_args += ["--log-path", str(log_path)]
    logger.info("running %s", " ".join(["dbt", *args]))
    started = time.monotonic()
    if in_process:
        returncode, output = _invoke_here(cli_args, env, project)
    else:
        try:
            completed = subprocess.run(
                [*dbt_command(), *cli_args],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise DbtError(f"dbt {' '.join(args)} did not finish within {timeout:.0f} s") from e
        returncode, output = completed.returncode, completed.stdout + completed.stderr
    result = DbtResult(
        args=tuple(args),
        returncode=returncode,
        output=output,
        seconds=time.monotonic() - started,
    )
    logger.info("dbt %s exited %s after %.1f s", " ".join(args), result.returncode, result.seconds)
    if check and not result.ok:
        raise DbtError(
            f"dbt {' '.join(args)} failed (exit {result.returncode}); its output names the "
            f"failing model or test:\n{tail(result.output)}",
            result,
        )
    return result


def _invoke_here(cli_args: list[str], env: Mapping[str, str], cwd: Path) -> tuple[int, str]:
    """dbt's ``dbtRunner`` on ``cli_args`` in this process: (exit code as dbt's CLI gives it,
    what dbt printed). 0 success, 1 a model or test failed, 2 dbt could not run (its own
    error, e.g. the warehouse unreachable). Anything else dbt caught (a task's timeout, a bug)
    is raised again, as it would have ended a dbt process."""
    from dbt.cli.main import dbtRunner

    printed = io.StringIO()
    with (
        _environment(env),
        _working_directory(cwd),
        _collector_paused(),
        contextlib.redirect_stdout(printed),
        contextlib.redirect_stderr(printed),
    ):
        outcome = dbtRunner().invoke(cli_args)
    if outcome.success:
        return 0, printed.getvalue()
    if outcome.exception is None:
        return 1, printed.getvalue()
    if _raised_by_dbt(outcome.exception):
        return 2, f"{printed.getvalue()}{outcome.exception}\n"
    raise outcome.exception


def _raised_by_dbt(error: BaseException) -> bool:
    """One of dbt's own errors (a usage error, the warehouse unreachable, a bad profile): its
    class comes from dbt's packages."""
    return type(error).__module__.split(".")[0] in ("dbt", "dbt_common", "dbt_adapters")


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """This process's environment is ``env`` for the block (dbt reads its settings and the
    profile's connection from it), and what it was after: the connection's variables do not
    outlive the command or reach a process started later."""
    before = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)


@contextlib.contextmanager
def _working_directory(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the command, as for a dbt process
    (``moonwatch.dbt.environment.LEAN_DBT`` says why)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run_dbt_in(workdir: Path | str, args: Sequence[str], **kwargs: Any) -> DbtResult:
    """:func:`run_dbt` with its own ``target/`` and ``logs/`` in ``workdir`` (e.g. a temporary
    folder), so it never shares them with a concurrent run; dbt's artifacts are read from there."""
    return run_dbt(
        args, target_path=Path(workdir) / "target", log_path=Path(workdir) / "logs", **kwargs
    )


def could_not_run(what: str, result: DbtResult) -> WarehouseError:
    """The error for dbt exiting 2: it could not run at all (warehouse unreachable, bad
    profile). Retrying can help, unlike a failed model or test."""
    return WarehouseError(
        f"dbt could not {what} (exit {result.returncode}); check that the warehouse answers at "
        "MOONWATCH_WAREHOUSE_URL (in Airflow: the moonwatch_warehouse connection):\n"
        + tail(result.output)
    )


def tail(text: str, lines: int = 40) -> str:
    """The last ``lines`` lines of dbt's output: where it names what failed."""
    return "\n".join(text.splitlines()[-lines:])


def failures(output: str) -> list[str]:
    """dbt's lines naming each failed test or errored node, from its output."""
    return [
        line.strip()
        for line in output.splitlines()
        if "Failure in test" in line or "Error in test" in line or "Error in model" in line
    ]


def summary(output: str) -> str:
    """dbt's closing ``Done. PASS=.. WARN=.. ERROR=..`` line, or "" if it wrote none."""
    return next((line.strip() for line in reversed(output.splitlines()) if "Done." in line), "")
