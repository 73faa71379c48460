"""The launcher against real services: its own home and ports, separate from the test stack."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from moonwatch.errors import StackError
from moonwatch.stack import postgres, registry
from moonwatch.stack.config import StackConfig
from moonwatch.stack.ephemeral import ephemeral_env, live_pids
from moonwatch.stack.process import ManagedProcess, free_port, port_is_free, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _launcher_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOONWATCH_", "AIRFLOW"))}
    env.update(
        MOONWATCH_HOME=str(home),
        MOONWATCH_PG_PORT=str(free_port()),
        MOONWATCH_KAFKA_PORT=str(free_port()),
    )
    return env


def _stack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "moonwatch.stack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_launcher_up_status_env_down_leaves_nothing_behind(tmp_path: Path) -> None:
    env = _launcher_env(tmp_path)
    pg_port, kafka_port = int(env["MOONWATCH_PG_PORT"]), int(env["MOONWATCH_KAFKA_PORT"])
    try:
        up = _stack(env, "up", "--only", "postgres,broker")
        assert up.returncode == 0, up.stderr
        again = _stack(env, "up", "--only", "postgres,broker")
        assert again.returncode == 0, again.stderr  # a second `up` while running is harmless

        # Right after `up` returns, `status` of what it started passes: up waits for health.
        status = _stack(env, "status", "--only", "postgres,broker")
        assert status.returncode == 0, status.stdout
        assert "postgres   running   healthy" in status.stdout
        assert "broker     running   healthy" in status.stdout

        exported = _stack(env, "env").stdout
        assert f"export MOONWATCH_KAFKA_BOOTSTRAP=127.0.0.1:{kafka_port}" in exported
        url = next(
            line.split("=", 1)[1].strip("'")
            for line in exported.splitlines()
            if line.startswith("export MOONWATCH_WAREHOUSE_URL=")
        )
        with psycopg.connect(url) as conn:
            tables = conn.execute(
                "select count(*) from information_schema.tables where table_schema = 'raw'"
            ).fetchone()
        assert tables[0] >= 4
        pids = [int(p.read_text().split()[0]) for p in (tmp_path / "run").glob("*.pid")]
        assert len(pids) == 3  # postgres, broker and the supervisor that restarts them
    finally:
        down = _stack(env, "down")
    assert down.returncode == 0, down.stderr
    assert "supervisor" in down.stdout
    assert "postgres" in down.stdout and "broker" in down.stdout
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), f"process {pid} survived"
    assert port_is_free(pg_port) and port_is_free(kafka_port)
    assert not list((tmp_path / "run").glob("*.pid"))


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_stale_pid_file_is_recognised_and_replaced(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", tmp_path / "run", tmp_path / "logs")
    process.run_dir.mkdir(parents=True)
    # The PID of this very test process, but with a start time that is not its own: a PID
    # file left by a crash whose PID was later reused must not make us signal the new owner.
    process.pid_file.write_text(f"{os.getpid()} 1")
    assert process.pid() is None
    assert not process.pid_file.exists()

    pid = process.start(["sleep", "60"], env=dict(os.environ))
    assert process.pid() == pid
    assert process.stop(timeout=5)
    assert process.pid() is None


def test_postgres_recovers_after_kill_without_losing_data(tmp_path: Path) -> None:
    env = _launcher_env(tmp_path)
    config = StackConfig.from_env(env)
    try:
        postgres.start_postgres(config)
        postgres.bootstrap_warehouse(config)
        with psycopg.connect(config.warehouse_url) as conn:
            conn.execute("create table raw.survivor (id int)")
            conn.execute("insert into raw.survivor values (42)")
        pid = postgres.postgres_process(config).pid()
        os.kill(pid, signal.SIGKILL)  # a crash: postmaster.pid and our PID file stay behind
        deadline = time.monotonic() + 10
        while postgres.postgres_process(config).is_running() and time.monotonic() < deadline:
            time.sleep(0.1)
        # Orphaned backends may hold the port for a moment after the postmaster dies.
        deadline = time.monotonic() + 15
        while not port_is_free(config.pg_port) and time.monotonic() < deadline:
            time.sleep(0.2)
        postgres.start_postgres(config)
        with psycopg.connect(config.warehouse_url) as conn:
            assert conn.execute("select id from raw.survivor").fetchall() == [(42,)]
    finally:
        postgres.stop_postgres(config)


def test_half_initialised_data_folder_is_set_aside(tmp_path: Path) -> None:
    config = StackConfig.from_env(_launcher_env(tmp_path))
    config.pg_data.mkdir(parents=True)
    (config.pg_data / "base").mkdir()  # what an interrupted initdb leaves: no PG_VERSION
    try:
        postgres.start_postgres(config)
        assert (config.pg_data / "PG_VERSION").exists()
        assert (config.pg_data.with_name("data.incomplete") / "base").exists()
    finally:
        postgres.stop_postgres(config)


def test_port_already_taken_says_which_setting_to_change(tmp_path: Path) -> None:
    config = StackConfig.from_env(_launcher_env(tmp_path))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", config.pg_port))
        squatter.listen()
        with pytest.raises(StackError, match="MOONWATCH_PG_PORT"):
            postgres.start_postgres(config)


def test_dashboard_role_reads_marts_only_and_writes_nothing(pg: StackConfig) -> None:
    with psycopg.connect(pg.warehouse_url, autocommit=True) as loader:
        loader.execute("create table if not exists marts.role_probe (id int)")
        loader.execute("insert into marts.role_probe values (1)")
    with psycopg.connect(pg.dashboard_db_url, autocommit=True) as reader:
        assert reader.execute("select id from marts.role_probe").fetchall() == [(1,)]
        for statement in (
            "select * from raw.crypto_quotes",
            "select * from staging.nothing",
            "insert into marts.role_probe values (2)",
            "delete from marts.role_probe",
            "create table marts.intruder (id int)",
            "create table public.intruder (id int)",
            "set default_transaction_read_only = off; insert into marts.role_probe values (3)",
        ):
            with pytest.raises(psycopg.errors.Error):
                reader.execute(statement)
    airflow_db = pg.dashboard_db_url.rsplit("/", 1)[0] + "/airflow"
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(airflow_db)
    with psycopg.connect(pg.warehouse_url, autocommit=True) as loader:
        assert loader.execute("select count(*) from marts.role_probe").fetchone() == (1,)
        loader.execute("drop table marts.role_probe")


def test_supervisor_restarts_a_killed_service(tmp_path: Path) -> None:
    env = _launcher_env(tmp_path)
    config = StackConfig.from_env(env)
    try:
        assert _stack(env, "up", "--only", "postgres,broker").returncode == 0
        from moonwatch.stack.broker import broker_healthy, broker_process

        old = broker_process(config).pid()
        os.kill(old, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = broker_process(config).pid()
            if new and new != old and broker_healthy(config.kafka_bootstrap):
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the supervisor did not bring the broker back within 60 s")
        assert (
            "broker is not running: starting it again"
            in (tmp_path / "logs" / "supervisor.log").read_text()
        )
    finally:
        _stack(env, "down")


def test_a_port_clash_is_reported_before_anything_starts(tmp_path: Path) -> None:
    """The dashboard starts last; its port taken must stop `up` before Postgres and the rest."""
    env = ephemeral_env(tmp_path)
    config = StackConfig.from_env(env)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", config.dashboard_port))
        squatter.listen()
        up = _stack(env, "up")
    assert up.returncode == 2, up.stdout + up.stderr
    assert "nothing was started" in up.stderr
    assert f"port {config.dashboard_port} for the dashboard" in up.stderr
    assert "MOONWATCH_DASHBOARD_PORT" in up.stderr
    assert live_pids(config) == {}
    assert port_is_free(config.pg_port) and port_is_free(config.kafka_port)


def test_a_service_that_fails_to_start_makes_up_stop_the_others(tmp_path: Path) -> None:
    """Postgres and the broker really start; a third service's process dies while starting.
    `up` must stop the two it started and leave nothing running. The broken service is one
    registry entry, as a new service (a Redis, a Celery worker) would be."""
    config = StackConfig.from_env(_launcher_env(tmp_path))
    crasher = ManagedProcess("crasher", config.run_dir, config.log_dir)

    def start(config: StackConfig) -> None:
        crasher.start(["sh", "-c", "echo cannot start >&2; exit 3"], env=dict(os.environ))
        wait_until(lambda: False, "the crasher to answer", 30, crasher)

    broken = registry.Service(
        "crasher", ports=(), processes=lambda c: [crasher], start=start, healthy=lambda c: False
    )
    stack = (*registry.selected(("postgres", "broker")), broken)
    try:
        with pytest.raises(StackError, match="crasher exited while starting"):
            registry.up(config, ("postgres", "broker", "crasher"), services=stack)
        assert live_pids(config) == {}
        assert port_is_free(config.pg_port) and port_is_free(config.kafka_port)
    finally:
        for service in stack:
            service.stop(config)


def test_bootstrap_keeps_public_out_of_every_database_but_the_warehouse(pg: StackConfig) -> None:
    """The one bootstrap (postgres_init/, which Docker's postgres-init runs too) on a real server:
    no role may connect to template1 or postgres by default; the dashboard only to the
    warehouse. Docker's copy once missed template1."""
    with psycopg.connect(pg.admin_url) as admin:
        rows = admin.execute(
            "select datname, has_database_privilege('moonwatch_dashboard', datname, 'connect')"
            " from pg_database where datname in ('template1', 'postgres', 'airflow', 'moonwatch')"
            " order by datname"
        ).fetchall()
    assert rows == [
        ("airflow", False),
        ("moonwatch", True),
        ("postgres", False),
        ("template1", False),
    ]
    for database in ("template1", "postgres"):
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(pg.dashboard_db_url.rsplit("/", 1)[0] + f"/{database}")
