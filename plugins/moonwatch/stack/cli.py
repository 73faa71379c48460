"""``python -m moonwatch.stack up|down|status|env``: the local stack behind the Makefile."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from moonwatch.errors import MoonwatchError
from moonwatch.stack import airflow, broker, celery_executor, postgres, registry, supervisor
from moonwatch.stack.config import AIRFLOW_ADMIN_USER, StackConfig
from moonwatch.stack.files import (
    ensure_private,
    make_private_tree,
    use_private_umask,
    write_private,
)

logger = logging.getLogger("moonwatch.stack")

SERVICES = registry.NAMES


def up(config: StackConfig, only: tuple[str, ...] = SERVICES) -> None:
    """Every chosen service started and healthy, then the supervisor; or nothing left running."""
    started = time.monotonic()
    registry.up(config, only)
    supervisor.start_supervisor(config, only)
    print(f"Moonwatch is up ({time.monotonic() - started:.0f} s).")
    print(describe(config))


def describe(config: StackConfig) -> str:
    source = "offline simulator (no CMC_API_KEY set)" if config.simulated else "CoinMarketCap"
    executor = (
        f"CeleryExecutor: {len(celery_executor.WORKERS)} workers, Redis on "
        f"127.0.0.1:{config.redis_port}"
        if config.celery
        else "LocalExecutor (MOONWATCH_EXECUTOR=celery for Celery workers)"
    )
    return "\n".join(
        [
            f"  Airflow UI   {config.airflow_url}  (login: {AIRFLOW_ADMIN_USER} / password in "
            f"{config.secrets_file} as MOONWATCH_AIRFLOW_ADMIN_PASSWORD)",
            f"  Dashboard    {config.dashboard_url}",
            f"  Quotes from  {source}",
            f"  Executor     {executor}",
            f"  Kafka        {config.kafka_bootstrap}",
            f"  Logs         {config.log_dir}",
            '  Settings     eval "$(make -s env)"',
        ]
    )


def down(config: StackConfig, drain_timeout: float | None = None) -> None:
    # The supervisor first, or it would start again what we stop.
    stopped = ["supervisor"] if supervisor.supervisor_process(config).stop() else []
    if drain_timeout is None:
        drain_timeout = config.settings.down_drain_seconds
    drain_broker(config, drain_timeout)
    for service in reversed(registry.SERVICES):
        stopped += service.stop(config)
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


def drain_broker(config: StackConfig, timeout: float) -> int | None:
    """Before the in-memory broker stops, let the loader load what it holds (up to ``timeout``
    seconds); say what is dropped. Returns the messages left unloaded (None: unknown)."""
    if config.external_kafka or not broker.broker_process(config).is_running():
        return 0
    left = broker.unloaded_messages(config.kafka_bootstrap, config.topic, config.consumer_group)
    loader_runs = all(
        airflow.component_process(config, c).is_running() for c in ("scheduler", "triggerer")
    )
    if left and loader_runs:
        print(f"waiting up to {timeout:.0f} s for the loader to load {left} message(s) ...")
        deadline = time.monotonic() + timeout
        while left and time.monotonic() < deadline:
            time.sleep(2)
            left = broker.unloaded_messages(
                config.kafka_bootstrap, config.topic, config.consumer_group
            )
    if left is None:
        print(
            "broker: could not count the messages not yet loaded; the local broker keeps them in "
            "memory only, so any there are dropped now"
        )
    elif left:
        why = "" if loader_runs else " (Airflow is not running, so nothing loads them)"
        print(
            f"broker: DROPPING {left} acknowledged message(s) not yet loaded{why}; the local "
            "broker keeps messages in memory only. Set MOONWATCH_DOWN_DRAIN_SECONDS to wait longer."
        )
    else:
        print("broker: every acknowledged message is loaded")
    return left


def broker_note(config: StackConfig) -> str:
    """What `make status` says about the local broker's durability and what it holds."""
    if config.external_kafka:
        return ""
    left = broker.unloaded_messages(config.kafka_bootstrap, config.topic, config.consumer_group)
    waiting = "unknown" if left is None else str(left)
    note = (
        f"  memory only, no authentication: {waiting} acknowledged message(s) not yet loaded "
        "would be lost if it stopped"
    )
    last = supervisor.last_broker_restart(config)
    return note + (f"\n           last restart: {last}" if last else "")


def status(config: StackConfig, only: tuple[str, ...] = SERVICES) -> bool:
    """Print one line per service; True when everything that should run is healthy."""
    all_ok = True
    for service in registry.selected(only):
        if not service.used(config):
            print(f"{service.name:<10} not used")
            continue
        why = registry.problem(service, config)
        healthy = why is None
        if service.external(config):
            managed = "external"
        else:
            managed = "running" if service.is_running(config) else "stopped"
        line = f"{service.name:<10} {managed:<9} {'healthy' if healthy else 'NOT healthy'}"
        if service.name == "broker" and healthy:
            line += broker_note(config)
        elif why:
            line += f"  {why}"
        print(line)
        all_ok = all_ok and healthy
    print(f"{'credits':<10} {credits_note(config)}")
    return all_ok


def credits_note(config: StackConfig) -> str:
    """The producer's pace: effective cadence, credits used and left (raw.cmc_credit_pace)."""
    from moonwatch.warehouse.credits import describe_pace, read_pace

    source = "simulator" if config.simulated else "coinmarketcap"
    try:
        with psycopg.connect(config.warehouse_url, connect_timeout=2) as conn:
            return describe_pace(read_pace(conn, source))
    except psycopg.Error as e:
        return f"unknown (cannot read the warehouse: {type(e).__name__})"


def secure_home(config: StackConfig) -> list[Path]:
    """Re-check what an older version or a restore may have left readable in the home folder."""
    fixed = [config.home] if ensure_private(config.home, "the Moonwatch home folder") else []
    for folder, what in (
        (config.run_dir, "PID files"),
        (config.log_dir, "service logs"),
        (config.airflow_home, "Airflow's home"),
        (config.redis_dir, "Redis's folder"),
        (config.celery_dir, "the Celery workers' folders"),
    ):
        fixed += make_private_tree(folder, what)
    return fixed


def psql_invocation(config: StackConfig, args: list[str]) -> tuple[list[str], dict[str, str]]:
    """psql on the warehouse as the loader: the password goes to a 0600 pgpass file named by
    PGPASSFILE, never to the command line, where `ps` would show it to every local user."""
    info = conninfo_to_dict(config.warehouse_url)
    values = {
        "PGHOST": info.get("host") or "127.0.0.1",
        "PGPORT": str(info.get("port") or 5432),
        "PGDATABASE": info.get("dbname") or "",
        "PGUSER": info.get("user") or "",
    }
    config.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    pgpass = config.run_dir / "pgpass"
    fields = [values["PGHOST"], values["PGPORT"], values["PGDATABASE"], values["PGUSER"]]
    fields.append(str(info.get("password") or ""))
    write_private(pgpass, ":".join(_pgpass_escape(f) for f in fields) + "\n")
    env = {k: v for k, v in config.env.items() if k != "PGPASSWORD"}
    env.update(values, PGPASSFILE=str(pgpass), PGAPPNAME="moonwatch-psql")
    if info.get("sslmode"):
        env["PGSSLMODE"] = str(info["sslmode"])
    binary = shutil.which("psql") or str(postgres.find_pg_bindir() / "psql")
    return [binary, *args], env


def _pgpass_escape(field: str) -> str:
    return field.replace("\\", "\\\\").replace(":", "\\:")


def env_lines(config: StackConfig) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in config.settings_env().items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m moonwatch.stack")
    parser.add_argument("command", choices=("up", "down", "status", "env", "supervise", "psql"))
    parser.add_argument(
        "--only", default=",".join(SERVICES), help=f"comma-separated subset of {','.join(SERVICES)}"
    )
    argv = sys.argv[1:] if argv is None else argv
    # psql's own options (`make psql PSQL_ARGS="-c 'select 1'"`) pass through untouched.
    psql_args = argv[1:] if argv[:1] == ["psql"] else None
    args = parser.parse_args(argv[:1] if psql_args is not None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Everything the launcher and its services create is private (passwords, logs, PID files).
    use_private_umask()
    try:
        config = StackConfig.from_env()
        if psql_args is not None:
            binary_argv, env = psql_invocation(config, psql_args)
            os.execve(binary_argv[0], binary_argv, env)
        only = tuple(s.strip() for s in args.only.split(",") if s.strip())
        registry.selected(only)  # refuses an unknown name before anything starts
        if args.command == "up":
            secure_home(config)
            up(config, only)
        elif args.command == "supervise":
            supervisor.supervise(config, only)
        elif args.command == "down":
            down(config)
        elif args.command == "status":
            return 0 if status(config, only) else 1
        else:
            print(env_lines(config))
    except MoonwatchError as e:
        print(f"moonwatch: {e}", file=sys.stderr)
        return 2
    return 0
