"""A whole throw-away stack: temporary home, free ports, started and stopped like `make up`.

Used by the end-to-end test, the chaos suite and the benchmarks, so each runs the same launcher
a user runs, without touching the user's own stack on the default ports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from moonwatch.stack.config import CHECKOUT, DEFAULT_PORTS, StackConfig
from moonwatch.stack.process import free_port, port_is_free
from moonwatch.stack.registry import SERVICES


def ephemeral_env(home: Path, **extra: str) -> dict[str, str]:
    """The current environment minus any Moonwatch/Airflow settings, plus a private home."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MOONWATCH_", "AIRFLOW_", "AIRFLOW__", "CMC_"))
    }
    env.update({name: str(free_port()) for name in DEFAULT_PORTS})
    env["MOONWATCH_HOME"] = str(home)
    # No 30-day offline backfill at start: it would load the machine while the e2e, chaos
    # and bench runs measure the live path, and put messages on the topic no ledger expects.
    # The backfill has its own tests (tests/dags/test_crypto_quotes_backfill.py).
    env["MOONWATCH_HISTORY_DAYS"] = "0"
    env.update(extra)
    return env


def run_launcher(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    """`python -m moonwatch.stack ARGS` in ``env``; raises with its output if it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "moonwatch.stack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=CHECKOUT,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"`moonwatch.stack {' '.join(args)}` failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def live_pids(config: StackConfig) -> dict[str, int]:
    """Service name → PID for every PID file whose process still runs."""
    from moonwatch.stack.process import ManagedProcess

    pids = {}
    for pid_file in sorted(config.run_dir.glob("*.pid")):
        process = ManagedProcess(pid_file.stem, config.run_dir, config.log_dir)
        pid = process.pid()
        if pid is not None:
            pids[process.name] = pid
    return pids


def ports(config: StackConfig) -> list[int]:
    """Every port the stack's services listen on (the registry's)."""
    return [getattr(config, attribute) for s in SERVICES for attribute, _ in s.ports]


def leftovers(config: StackConfig, pids: dict[str, int]) -> list[str]:
    """What `down` left behind: live processes from ``pids`` and ports still bound."""
    left = []
    for name, pid in pids.items():
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            left.append(f"{name} (pid {pid})")
    left += [f"port {p}" for p in ports(config) if not port_is_free(p)]
    return left


@contextmanager
def ephemeral_stack(**extra_env: str) -> Iterator[tuple[StackConfig, dict[str, str]]]:
    """Start a full stack in a temporary home; always stop it and remove the home."""
    home = Path(tempfile.mkdtemp(prefix="moonwatch-stack-"))
    env = ephemeral_env(home, **extra_env)
    config = StackConfig.from_env(env)
    try:
        run_launcher(env, "up")
        yield config, env
    finally:
        try:
            run_launcher(env, "down", timeout=180)
        finally:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and any(not port_is_free(p) for p in ports(config)):
                time.sleep(0.5)
            if not os.environ.get("MOONWATCH_KEEP_TEST_HOME"):
                shutil.rmtree(home, ignore_errors=True)
