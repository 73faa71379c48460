"""Restart what dies: the local stack's process supervisor.

In Docker, `restart: unless-stopped` brings a crashed container back; locally this small loop
does the same. Airflow's scheduler, dag-processor and triggerer exit when their metadata
database goes away (a Postgres restart), and without a supervisor the pipeline would stay down
after the database came back.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from moonwatch.stack import airflow, broker, postgres, services
from moonwatch.stack.config import StackConfig
from moonwatch.stack.process import ManagedProcess

logger = logging.getLogger(__name__)

CHECK_EVERY_S = 5.0


def supervisor_process(config: StackConfig) -> ManagedProcess:
    return ManagedProcess("supervisor", config.run_dir, config.log_dir)


def _restart_broker(config: StackConfig) -> None:
    broker.start_broker(config)
    broker.ensure_topic(config.kafka_bootstrap, config.settings_env()["MOONWATCH_TOPIC"])


def watched(config: StackConfig, only: tuple[str, ...]) -> list[tuple[str, Callable, Callable]]:
    """(name, is_running, start) for every service this stack runs itself."""
    checks = []
    if "postgres" in only and not config.external_postgres:
        checks.append(
            (
                "postgres",
                postgres.postgres_process(config).is_running,
                lambda: postgres.start_postgres(config),
            )
        )
    if "broker" in only and not config.external_kafka:
        checks.append(
            ("broker", broker.broker_process(config).is_running, lambda: _restart_broker(config))
        )
    if "simulator" in only and config.simulated:
        checks.append(
            (
                "simulator",
                services.simulator_process(config).is_running,
                lambda: services.start_simulator(config),
            )
        )
    if "airflow" in only:
        checks.append(
            (
                "airflow",
                lambda: all(
                    airflow.component_process(config, c).is_running() for c in airflow.COMPONENTS
                ),
                lambda: airflow.start_airflow(config, timeout=60),
            )
        )
    if "dashboard" in only:
        checks.append(
            (
                "dashboard",
                services.dashboard_process(config).is_running,
                lambda: services.start_dashboard(config),
            )
        )
    return checks


def supervise(config: StackConfig, only: tuple[str, ...]) -> None:
    """Every few seconds, start again whatever service of ``only`` is not running."""
    checks = watched(config, only)
    logger.info("supervising %s", ", ".join(name for name, _, _ in checks))
    while True:
        for name, is_running, start in checks:
            if is_running():
                continue
            logger.warning("%s is not running: starting it again", name)
            try:
                start()
                logger.info("%s is back", name)
            except Exception:  # keep supervising; try again next round
                logger.exception(
                    "restarting %s failed; trying again in %.0f s", name, CHECK_EVERY_S
                )
        time.sleep(CHECK_EVERY_S)


def start_supervisor(config: StackConfig, only: tuple[str, ...]) -> None:
    supervisor_process(config).start(
        [sys.executable, "-m", "moonwatch.stack", "supervise", "--only", ",".join(only)],
        env=services.plugins_env(config),
    )
