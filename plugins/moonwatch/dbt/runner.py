"""dbt as a subprocess: :func:`run_dbt` runs ``dbt <args>`` on the project and says how it went."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
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
) -> DbtResult:
    """Run ``dbt <args>`` on the project in a subprocess and return its exit code and output.

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
    command = [*dbt_command(), *args, "--project-dir", str(project)]
    command += ["--profiles-dir", str(project)]
    if target_path is not None:
        command += ["--target-path", str(target_path)]
    if log_path is not None:
        command += ["--log-path", str(log_path)]
    logger.info("running %s", " ".join(["dbt", *args]))
    started = time.monotonic()
    try:
        completed = subprocess.run(
            command,
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise DbtError(f"dbt {' '.join(args)} did not finish within {timeout:.0f} s") from e
    result = DbtResult(
        args=tuple(args),
        returncode=completed.returncode,
        output=completed.stdout + completed.stderr,
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
