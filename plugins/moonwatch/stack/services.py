"""The two small services of the local stack: the market simulator and the Streamlit dashboard."""

from __future__ import annotations

import sys
from pathlib import Path

import requests

from moonwatch.stack import environment
from moonwatch.stack.config import CHECKOUT, StackConfig
from moonwatch.stack.process import ManagedProcess, require_free_port, wait_until


def simulator_process(config: StackConfig) -> ManagedProcess:
    return ManagedProcess("simulator", config.run_dir, config.log_dir)


def dashboard_process(config: StackConfig) -> ManagedProcess:
    return ManagedProcess("dashboard", config.run_dir, config.log_dir)


def _start_http_service(
    config: StackConfig,
    process: ManagedProcess,
    argv: list[str],
    port: tuple[int, str],
    health_url: str,
    timeout: float,
    env: dict[str, str],
) -> None:
    """Start ``argv`` unless running, then wait until ``health_url`` answers 200."""
    if process.is_running():
        return
    require_free_port(port[0], f"the {process.name}", port[1])
    process.start(argv, env=env, cwd=CHECKOUT)
    wait_until(lambda: http_ok(health_url), f"the {process.name}", timeout, process)


def start_simulator(config: StackConfig, timeout: float = 30.0) -> None:
    argv = [sys.executable, "-m", "moonwatch.sources.simulator", "--host", "127.0.0.1"]
    argv += ["--port", str(config.sim_port), "--seed", str(config.settings.simulator_seed)]
    _start_http_service(
        config,
        simulator_process(config),
        argv,
        (config.sim_port, "MOONWATCH_SIM_PORT"),
        f"{config.simulator_url}/health",
        timeout,
        environment.simulator_env(config),
    )


DASHBOARD_APP = CHECKOUT / "streamlit_app" / "app.py"


def dashboard_argv(port: int, app: Path = DASHBOARD_APP) -> list[str]:
    """`streamlit run` for ``app`` on 127.0.0.1:``port`` (run it with cwd = project root, where
    .streamlit/config.toml lives). The launcher, tests and benchmarks all start it so."""
    return [
        *(sys.executable, "-m", "streamlit", "run", str(app)),
        *("--server.address", "127.0.0.1", "--server.port", str(port)),
        *("--server.headless", "true", "--browser.gatherUsageStats", "false"),
    ]


def start_dashboard(config: StackConfig, timeout: float = 60.0) -> None:
    _start_http_service(
        config,
        dashboard_process(config),
        dashboard_argv(config.dashboard_port),
        (config.dashboard_port, "MOONWATCH_DASHBOARD_PORT"),
        f"{config.dashboard_url}/_stcore/health",
        timeout,
        environment.dashboard_env(config),
    )


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
