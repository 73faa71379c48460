"""The two small services of the local stack: the market simulator and the Streamlit dashboard."""

from __future__ import annotations

import os
import sys

import requests

from moonwatch.settings import PROJECT_ROOT
from moonwatch.stack.config import StackConfig
from moonwatch.stack.process import ManagedProcess, require_free_port, wait_until


def _plugins_env(config: StackConfig) -> dict[str, str]:
    return {
        **os.environ,
        **config.settings_env(),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(PROJECT_ROOT / "plugins"), os.environ.get("PYTHONPATH", "")) if p
        ),
    }


def simulator_process(config: StackConfig) -> ManagedProcess:
    return ManagedProcess("simulator", config.run_dir, config.log_dir)


def start_simulator(config: StackConfig, timeout: float = 30.0) -> None:
    process = simulator_process(config)
    if process.is_running():
        return
    require_free_port(config.sim_port, "the market simulator", "MOONWATCH_SIM_PORT")
    process.start(
        [
            sys.executable,
            "-m",
            "moonwatch.sources.simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(config.sim_port),
            "--seed",
            config.env.get("MOONWATCH_SIM_SEED", "42"),
        ],
        env=_plugins_env(config),
    )
    wait_until(lambda: http_ok(f"{config.simulator_url}/health"), "the simulator", timeout, process)


def dashboard_process(config: StackConfig) -> ManagedProcess:
    return ManagedProcess("dashboard", config.run_dir, config.log_dir)


def start_dashboard(config: StackConfig, timeout: float = 60.0) -> None:
    process = dashboard_process(config)
    if process.is_running():
        return
    require_free_port(config.dashboard_port, "the dashboard", "MOONWATCH_DASHBOARD_PORT")
    process.start(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(PROJECT_ROOT / "streamlit_app" / "app.py"),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(config.dashboard_port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        env=_plugins_env(config),
        cwd=PROJECT_ROOT,
    )
    wait_until(
        lambda: http_ok(f"{config.dashboard_url}/_stcore/health"), "the dashboard", timeout, process
    )


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
