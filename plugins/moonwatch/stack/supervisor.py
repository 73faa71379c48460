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
from datetime import UTC, datetime
from pathlib import Path

from moonwatch.stack import broker, environment, registry
from moonwatch.stack.config import StackConfig
from moonwatch.stack.files import cap_service_logs
from moonwatch.stack.process import ManagedProcess

logger = logging.getLogger(__name__)

CHECK_EVERY_S = 5.0
CAP_LOGS_EVERY_ROUNDS = 12  # about a minute


def supervisor_process(config: StackConfig) -> ManagedProcess:
    return ManagedProcess("supervisor", config.run_dir, config.log_dir)


def restart_broker(config: StackConfig) -> None:
    """Start the broker again and say, loudly, what its death lost."""
    lost = last_recorded_lag(config)
    broker.start_broker(config)
    broker.ensure_quotes_topic(config)
    # Loud: the broker keeps messages in memory only, so a restart is data loss, not a blip.
    what = (
        "an unknown number of"
        if lost is None
        else f"{lost[0]} (counted {time.time() - lost[1]:.0f} s before it died)"
    )
    message = (
        f"BROKER RESTARTED: the local broker keeps messages in memory only; {what} "
        "acknowledged message(s) not yet loaded are LOST, and the loader's committed offsets "
        "with them (the topic starts again at offset 0)"
    )
    logger.error(message)
    with _restart_file(config).open("a") as record:
        record.write(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC {message}\n")


def _lag_file(config: StackConfig) -> Path:
    return config.run_dir / "broker.lag"


def _restart_file(config: StackConfig) -> Path:
    return config.log_dir / "broker-restarts.log"


def record_lag(config: StackConfig) -> None:
    """Remember what the live broker holds unloaded, so a crash can say what it lost."""
    try:
        lag = broker.unloaded_messages(config.kafka_bootstrap, config.topic, config.consumer_group)
    except Exception:  # counting is best effort; supervising must go on
        logger.debug("could not count the broker's unloaded messages", exc_info=True)
        return
    if lag is not None:
        _lag_file(config).write_text(f"{lag} {time.time():.0f}")


def last_recorded_lag(config: StackConfig) -> tuple[int, float] | None:
    try:
        count, at = _lag_file(config).read_text().split()
        return int(count), float(at)
    except (FileNotFoundError, ValueError):
        return None


def last_broker_restart(config: StackConfig) -> str | None:
    try:
        lines = _restart_file(config).read_text().splitlines()
    except FileNotFoundError:
        return None
    return lines[-1] if lines else None


def watched(config: StackConfig, only: tuple[str, ...]) -> list[registry.Service]:
    """The services of ``only`` this stack runs itself."""
    return [s for s in registry.selected(only) if s.runs_here(config)]


def supervise(config: StackConfig, only: tuple[str, ...]) -> None:
    """Every few seconds, start again whatever service of ``only`` is not running."""
    chosen = watched(config, only)
    logger.info("supervising %s", ", ".join(s.name for s in chosen))
    rounds = 0
    while True:
        rounds += 1
        if rounds % CAP_LOGS_EVERY_ROUNDS == 0:
            for path in cap_service_logs(config.log_dir):
                logger.info("%s passed its size cap: moved to %s.1", path.name, path.name)
        for service in chosen:
            if service.is_running(config):
                if service.name == "broker":
                    record_lag(config)
                continue
            logger.warning("%s is not running: starting it again", service.name)
            try:
                (service.restart or service.start)(config)
                logger.info("%s is back", service.name)
            except Exception:  # keep supervising; try again next round
                logger.exception(
                    "restarting %s failed; trying again in %.0f s", service.name, CHECK_EVERY_S
                )
        time.sleep(CHECK_EVERY_S)


def start_supervisor(config: StackConfig, only: tuple[str, ...]) -> None:
    supervisor_process(config).start(
        [sys.executable, "-m", "moonwatch.stack", "supervise", "--only", ",".join(only)],
        env=environment.supervisor_env(config),
    )
