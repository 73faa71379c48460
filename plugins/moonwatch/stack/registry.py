"""Every service of the local stack, one entry each: its ports, processes, start, health, stop.

`up`, `down`, `status` and the supervisor all walk this one list, so a new service (say a
Redis and two Celery workers) is one more entry, and what the launcher knows about a service
is in one place. The order is the start order; `down` stops in reverse.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import psycopg

from moonwatch.errors import StackError
from moonwatch.stack import airflow, broker, celery_executor, history, postgres, services
from moonwatch.stack.config import StackConfig
from moonwatch.stack.process import ManagedProcess, port_is_free, port_taken_message, wait_until


def _never_external(config: StackConfig) -> str | None:
    return None


def _always(config: StackConfig) -> bool:
    return True


def _nothing(config: StackConfig) -> None:
    return None


@dataclass(frozen=True)
class Service:
    """What the launcher knows about one service."""

    name: str
    # (StackConfig attribute holding the port, the setting that changes it)
    ports: tuple[tuple[str, str], ...]
    processes: Callable[[StackConfig], list[ManagedProcess]]
    # Start it (if not running) and wait until it answers; also used by the supervisor.
    start: Callable[[StackConfig], None]
    healthy: Callable[[StackConfig], bool]
    # Where a service can say more than yes or no: its health check with the reason, None when
    # healthy, else why. `status` asks it instead of ``healthy``, once.
    diagnose: Callable[[StackConfig], str | None] | None = None
    # The setting that points the stack at someone else's service instead, when it does.
    external: Callable[[StackConfig], str | None] = _never_external
    # False: this stack does not use the service at all (the simulator with a real key).
    used: Callable[[StackConfig], bool] = _always
    # What `up` does once the service (ours or external) answers: the topic, the history.
    after_up: Callable[[StackConfig], None] = _nothing
    # The supervisor's restart, when it must do more than start (say what a restart lost).
    restart: Callable[[StackConfig], None] | None = None
    stop_timeout: float = 20.0
    stop_signal: str = "SIGTERM"

    def runs_here(self, config: StackConfig) -> bool:
        """True when this launcher starts and stops the service's processes."""
        return self.used(config) and self.external(config) is None

    def is_running(self, config: StackConfig) -> bool:
        return all(p.is_running() for p in self.processes(config))

    def stop(self, config: StackConfig) -> list[str]:
        """Stop every process of the service at once; the names of those that ran."""
        import signal

        sig = signal.Signals[self.stop_signal]
        processes = list(reversed(self.processes(config)))
        with ThreadPoolExecutor(max_workers=len(processes)) as pool:
            stopped = list(pool.map(lambda p: p.stop(self.stop_timeout, sig), processes))
        return [p.name for p, ran in zip(processes, stopped, strict=True) if ran]


def _start_postgres(config: StackConfig) -> None:
    postgres.start_postgres(config)
    postgres.bootstrap_warehouse(config)


def _pg_ok(config: StackConfig) -> bool:
    with psycopg.connect(config.warehouse_url, connect_timeout=2) as conn:
        return conn.execute("select 1").fetchone() == (1,)


def _topic(config: StackConfig) -> None:
    broker.ensure_quotes_topic(config)


def _history(config: StackConfig) -> None:
    # Offline, a fresh warehouse gets 30 days of simulated history through Airflow's backfill
    # (a one-shot in the background; see moonwatch.stack.history).
    if history.start_history_request(config):
        days = history.history_days(config.env)
        print(f"History: asking Airflow to backfill {days} days of simulated quotes (once)")


def _warm_dashboard(config: StackConfig) -> None:
    # The first visitor would otherwise wait while the page imports its modules, connects and
    # fills its caches (14-24 s after a fresh `up`): run the page once now, as a browser would.
    from streamlit_app.warmup import WarmupError, warm

    try:
        warm(config.dashboard_url)
    except WarmupError as e:  # a cold first visit is slow, not broken: `up` goes on
        print(f"Dashboard: {e}")


def _restart_broker(config: StackConfig) -> None:
    from moonwatch.stack import supervisor

    supervisor.restart_broker(config)


SERVICES: tuple[Service, ...] = (
    Service(
        "postgres",
        ports=(("pg_port", "MOONWATCH_PG_PORT"),),
        processes=lambda c: [postgres.postgres_process(c)],
        start=_start_postgres,
        healthy=_pg_ok,
        external=lambda c: "MOONWATCH_WAREHOUSE_URL" if c.external_postgres else None,
        restart=postgres.start_postgres,  # the bootstrap survives a restart: no need again
        # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
        stop_timeout=30,
        stop_signal="SIGINT",
    ),
    Service(
        "broker",
        ports=(("kafka_port", "MOONWATCH_KAFKA_PORT"),),
        processes=lambda c: [broker.broker_process(c)],
        start=broker.start_broker,
        healthy=lambda c: broker.broker_healthy(c.kafka_bootstrap),
        external=lambda c: "MOONWATCH_KAFKA_BOOTSTRAP" if c.external_kafka else None,
        after_up=_topic,
        restart=_restart_broker,
        stop_timeout=10,
    ),
    Service(
        "simulator",
        ports=(("sim_port", "MOONWATCH_SIM_PORT"),),
        processes=lambda c: [services.simulator_process(c)],
        start=services.start_simulator,
        healthy=lambda c: services.http_ok(f"{c.simulator_url}/health"),
        used=lambda c: c.simulated,
    ),
    Service(
        # The Celery broker; the scheduler needs it before it can queue a task.
        "redis",
        ports=(("redis_port", "MOONWATCH_REDIS_PORT"),),
        processes=lambda c: [celery_executor.redis_process(c)],
        start=celery_executor.start_redis,
        healthy=celery_executor.redis_healthy,
        used=lambda c: c.celery,
        stop_timeout=10,
    ),
    Service(
        "airflow",
        ports=(("airflow_port", "MOONWATCH_AIRFLOW_PORT"),),
        processes=airflow.processes,
        start=airflow.start_airflow,
        # Every component, not just the metadata database: up means ready to run DAGs.
        healthy=lambda c: airflow.airflow_healthy(c.airflow_url),
        diagnose=lambda c: "; ".join(airflow.airflow_problems(c.airflow_url)) or None,
        after_up=_history,
        restart=partial(airflow.start_airflow, timeout=60),
        # Docker's stop grace period. Nothing is lost either way: a load killed mid-batch rolls
        # back in Postgres and leaves its Kafka offsets uncommitted.
        stop_timeout=10,
    ),
    Service(
        # After Airflow: a worker's tasks talk to the api-server's execution API.
        "celery-workers",
        ports=(),
        processes=lambda c: [celery_executor.worker_process(c, w) for w in celery_executor.WORKERS],
        start=celery_executor.start_workers,
        healthy=celery_executor.workers_healthy,
        used=lambda c: c.celery,
        # Celery's warm shutdown waits for running tasks; a load killed after this rolls back.
        stop_timeout=30,
    ),
    Service(
        "dashboard",
        ports=(("dashboard_port", "MOONWATCH_DASHBOARD_PORT"),),
        processes=lambda c: [services.dashboard_process(c)],
        start=services.start_dashboard,
        healthy=lambda c: services.http_ok(f"{c.dashboard_url}/_stcore/health"),
        after_up=_warm_dashboard,
    ),
)
NAMES = tuple(s.name for s in SERVICES)


def selected(only: tuple[str, ...], services: tuple[Service, ...] = SERVICES) -> list[Service]:
    names = [s.name for s in services]
    unknown = set(only) - set(names)
    if unknown:
        raise StackError(f"unknown service(s) {sorted(unknown)}; choose from {', '.join(names)}")
    return [s for s in services if s.name in only]


def check_ports(config: StackConfig, chosen: list[Service]) -> None:
    """Before anything starts: every port a service about to start needs must be free."""
    clashes = [
        port_taken_message(getattr(config, attribute), f"the {service.name}", setting)
        for service in chosen
        if service.runs_here(config) and not service.is_running(config)
        for attribute, setting in service.ports
        if not port_is_free(getattr(config, attribute))
    ]
    if clashes:
        raise StackError("nothing was started: " + " ".join(clashes))


def problem(service: Service, config: StackConfig) -> str | None:
    """None when ``service`` is healthy; else why, as far as it can say ("" when it cannot)."""
    if service.diagnose is not None:
        try:
            return service.diagnose(config)
        except Exception as e:  # noqa: BLE001 - the status line must still print
            return f"cannot tell why ({type(e).__name__})"
    try:
        return None if service.healthy(config) else ""
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        return ""


def up(
    config: StackConfig,
    only: tuple[str, ...],
    timeout: float = 300.0,
    services: tuple[Service, ...] = SERVICES,
) -> None:
    """Start the chosen services in order and wait until every one is healthy. If anything
    fails, stop what this call started, so a failed `up` leaves nothing running."""
    chosen = [s for s in selected(only, services) if s.used(config)]
    check_ports(config, chosen)
    started: list[Service] = []
    try:
        for service in chosen:
            reason = service.external(config)
            if reason:
                print(f"{service.name}: external ({reason}); not starting one")
            elif not service.is_running(config):
                started.append(service)
                service.start(config)
            service.after_up(config)
        deadline = time.monotonic() + timeout
        for service in chosen:
            wait_until(
                lambda s=service: s.healthy(config),
                f"the {service.name} to be healthy",
                max(1.0, deadline - time.monotonic()),
                (service.processes(config) or [None])[0] if service.runs_here(config) else None,
            )
    except BaseException:
        for service in reversed(started):
            service.stop(config)
        if started:
            print("up failed: stopped " + ", ".join(s.name for s in reversed(started)))
        raise
