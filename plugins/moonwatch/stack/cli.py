"""``python -m moonwatch.stack up|down|status|env``: the local stack behind the Makefile."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from collections.abc import Callable

import psycopg

from moonwatch.errors import MoonwatchError
from moonwatch.stack import airflow, broker, postgres, services, supervisor
from moonwatch.stack.config import AIRFLOW_ADMIN_USER, StackConfig

logger = logging.getLogger("moonwatch.stack")

SERVICES = ("postgres", "broker", "simulator", "airflow", "dashboard")


def up(config: StackConfig, only: tuple[str, ...] = SERVICES) -> None:
    started = time.monotonic()
    if "postgres" in only:
        if config.external_postgres:
            print("PostgreSQL: external (MOONWATCH_WAREHOUSE_URL); not starting one")
        else:
            postgres.start_postgres(config)
            postgres.bootstrap_warehouse(config)
    if "broker" in only:
        if config.external_kafka:
            print(f"Kafka: external ({config.kafka_bootstrap}); not starting one")
        else:
            broker.start_broker(config)
        broker.ensure_topic(config.kafka_bootstrap, config.settings_env()["MOONWATCH_TOPIC"])
    if "simulator" in only and config.simulated:
        services.start_simulator(config)
    if "airflow" in only:
        airflow.start_airflow(config)
    if "dashboard" in only:
        services.start_dashboard(config)
    supervisor.start_supervisor(config, only)
    print(f"Moonwatch is up ({time.monotonic() - started:.0f} s).")
    print(describe(config))


def describe(config: StackConfig) -> str:
    source = "offline simulator (no CMC_API_KEY set)" if config.simulated else "CoinMarketCap"
    return "\n".join(
        [
            f"  Airflow UI   {config.airflow_url}  (login: {AIRFLOW_ADMIN_USER} / password in "
            f"{config.secrets_file} as MOONWATCH_AIRFLOW_ADMIN_PASSWORD)",
            f"  Dashboard    {config.dashboard_url}",
            f"  Quotes from  {source}",
            f"  Kafka        {config.kafka_bootstrap}",
            f"  Logs         {config.log_dir}",
            '  Settings     eval "$(make -s env)"',
        ]
    )


def down(config: StackConfig) -> None:
    # The supervisor first, or it would start again what we stop.
    stopped = ["supervisor"] if supervisor.supervisor_process(config).stop() else []
    stopped += [f"airflow {c}" for c in airflow.stop_airflow(config)]
    for name, stop in (
        ("dashboard", lambda: services.dashboard_process(config).stop()),
        ("simulator", lambda: services.simulator_process(config).stop()),
        ("broker", lambda: broker.stop_broker(config)),
        ("postgres", lambda: postgres.stop_postgres(config)),
    ):
        if stop():
            stopped.append(name)
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


def status(config: StackConfig) -> bool:
    """Print one line per service; True when everything that should run is healthy."""
    checks: list[tuple[str, bool | None, Callable[[], bool]]] = [
        (
            "postgres",
            None if config.external_postgres else postgres.postgres_process(config).is_running(),
            lambda: _pg_ok(config.warehouse_url),
        ),
        (
            "broker",
            None if config.external_kafka else broker.broker_process(config).is_running(),
            lambda: broker.broker_healthy(config.kafka_bootstrap),
        ),
        (
            "simulator",
            services.simulator_process(config).is_running() if config.simulated else None,
            lambda: services.http_ok(f"{config.simulator_url}/health"),
        ),
        (
            "airflow",
            airflow.component_process(config, "api-server").is_running(),
            lambda: airflow.airflow_healthy(config.airflow_url),
        ),
        (
            "dashboard",
            services.dashboard_process(config).is_running(),
            lambda: services.http_ok(f"{config.dashboard_url}/_stcore/health"),
        ),
    ]
    all_ok = True
    for name, running, check in checks:
        try:
            healthy = check()
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            healthy = False
        managed = "external" if running is None else ("running" if running else "stopped")
        print(f"{name:<10} {managed:<9} {'healthy' if healthy else 'NOT healthy'}")
        all_ok = all_ok and healthy
    return all_ok


def _pg_ok(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=2) as conn:
        return conn.execute("select 1").fetchone() == (1,)


def env_lines(config: StackConfig) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in config.settings_env().items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m moonwatch.stack")
    parser.add_argument("command", choices=("up", "down", "status", "env", "supervise"))
    parser.add_argument(
        "--only", default=",".join(SERVICES), help=f"comma-separated subset of {','.join(SERVICES)}"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = StackConfig.from_env()
        only = tuple(s.strip() for s in args.only.split(",") if s.strip())
        unknown = set(only) - set(SERVICES)
        if unknown:
            parser.error(f"unknown service(s) {sorted(unknown)}; choose from {SERVICES}")
        if args.command == "up":
            up(config, only)
        elif args.command == "supervise":
            supervisor.supervise(config, only)
        elif args.command == "down":
            down(config)
        elif args.command == "status":
            return 0 if status(config) else 1
        else:
            print(env_lines(config))
    except MoonwatchError as e:
        print(f"moonwatch: {e}", file=sys.stderr)
        return 2
    return 0
