"""A private PostgreSQL cluster for the local stack, and the warehouse's roles and schemas.

The cluster lives under ``$MOONWATCH_HOME/postgres`` and listens on 127.0.0.1 only (no Unix
socket), so it never collides with a system PostgreSQL. PostgreSQL refuses to run as root, so
under root the server runs as the unprivileged ``postgres`` user (or ``nobody``).
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from moonwatch.errors import StackError
from moonwatch.stack import environment
from moonwatch.stack.config import (
    AIRFLOW_DB,
    AIRFLOW_DB_ROLE,
    DASHBOARD_ROLE,
    LOADER_ROLE,
    PG_ADMIN_USER,
    WAREHOUSE_DB,
    StackConfig,
)
from moonwatch.stack.files import write_private
from moonwatch.stack.process import ManagedProcess, require_free_port, wait_until
from moonwatch.warehouse.migrate import apply_migrations

logger = logging.getLogger(__name__)


def find_pg_bindir() -> Path:
    """The folder holding ``initdb`` and ``postgres``: the machine's, else the pgserver wheel's."""
    candidates: list[str] = []
    if os.environ.get("MOONWATCH_PG_BINDIR"):
        candidates.append(os.environ["MOONWATCH_PG_BINDIR"])
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb")).resolve().parent))
    try:
        import pgserver  # type: ignore[import-not-found]

        candidates.append(str(Path(pgserver.__file__).parent / "pginstall" / "bin"))
    except ImportError:
        pass
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "postgres").exists():
            return Path(folder)
    raise StackError(
        "no PostgreSQL server binaries found (initdb, postgres). Install them with "
        "`apt-get install postgresql` (Debian), or `pip install pgserver`, or point "
        "MOONWATCH_PG_BINDIR at the folder, or use an external server by setting "
        "MOONWATCH_WAREHOUSE_URL."
    )


def _run_as() -> list[str]:
    """Prefix that drops root privileges for initdb and postgres."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        return [
            "setpriv",
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--init-groups",
            "--",
        ]
    raise StackError("running as root but no unprivileged user (postgres, nobody) exists")


def _chown_for_server(path: Path) -> None:
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam("postgres") if _has_user("postgres") else pwd.getpwnam("nobody")
    for root, dirs, files in os.walk(path):
        os.chown(root, user.pw_uid, user.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid)
    # Every parent must be traversable by the server's user (mkdtemp makes 0700 folders).
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o011)
        if parent == Path("/"):
            break


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def postgres_process(config: StackConfig) -> ManagedProcess:
    return ManagedProcess("postgres", config.run_dir, config.log_dir)


def init_cluster(config: StackConfig) -> None:
    """Create the data folder once. A half-made one (initdb interrupted) is made again."""
    data = config.pg_data
    if (data / "PG_VERSION").exists():
        return
    bindir = find_pg_bindir()
    scratch = data.with_name("data.initdb")
    if data.exists():
        # initdb writes into a scratch folder that is renamed at the end, so `data` without
        # PG_VERSION is not ours to guess about: keep it aside rather than delete anything.
        aside = data.with_name("data.incomplete")
        shutil.rmtree(aside, ignore_errors=True)
        data.rename(aside)
        logger.warning("moved an incomplete data folder aside to %s", aside)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    pwfile = scratch.parent / "initdb.pw"
    write_private(pwfile, config.secrets["MOONWATCH_PG_ADMIN_PASSWORD"] + "\n")
    _chown_for_server(scratch.parent)
    try:
        result = subprocess.run(
            [
                *_run_as(),
                str(bindir / "initdb"),
                "-D",
                str(scratch),
                "-U",
                PG_ADMIN_USER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
            ],
            capture_output=True,
            text=True,
            env=environment.postgres_env(config),
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise StackError(f"initdb failed:\n{result.stderr.strip()[-2000:]}")
    scratch.rename(data)


def start_postgres(config: StackConfig, timeout: float = 60.0) -> None:
    """Start the private cluster (if not already up) and wait until it accepts logins."""
    process = postgres_process(config)
    if process.is_running():
        return
    init_cluster(config)
    require_free_port(config.pg_port, "PostgreSQL", "MOONWATCH_PG_PORT")
    bindir = find_pg_bindir()
    _chown_for_server(config.pg_data.parent)
    config.log_dir.mkdir(parents=True, exist_ok=True)
    process.start(
        [
            *_run_as(),
            str(bindir / "postgres"),
            "-D",
            str(config.pg_data),
            "-p",
            str(config.pg_port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=128MB",
            "-c",
            "fsync=on",
        ],
        env=environment.postgres_env(config),
    )
    wait_until(
        lambda: _can_login(config.admin_url), "PostgreSQL to accept logins", timeout, process
    )


def _can_login(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=2):
        return True


def bootstrap_warehouse(config: StackConfig) -> None:
    """Roles, databases, schemas and grants; safe to run on every start."""
    s = config.secrets
    roles = {
        LOADER_ROLE: s["MOONWATCH_LOADER_PASSWORD"],
        DASHBOARD_ROLE: s["MOONWATCH_DASHBOARD_PASSWORD"],
        AIRFLOW_DB_ROLE: s["MOONWATCH_AIRFLOW_DB_PASSWORD"],
    }
    with psycopg.connect(config.admin_url, autocommit=True) as conn:
        for role, password in roles.items():
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
            verb = "alter" if exists else "create"
            conn.execute(
                sql.SQL(verb + " role {} login password {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
        for database, owner in ((WAREHOUSE_DB, LOADER_ROLE), (AIRFLOW_DB, AIRFLOW_DB_ROLE)):
            if not conn.execute(
                "select 1 from pg_database where datname = %s", (database,)
            ).fetchone():
                conn.execute(
                    sql.SQL("create database {} owner {}").format(
                        sql.Identifier(database), sql.Identifier(owner)
                    )
                )
            conn.execute(
                sql.SQL("revoke all on database {} from public").format(sql.Identifier(database))
            )
        # template1 too: PUBLIC may connect there by default, and whatever lands in it is
        # copied into every database created later.
        conn.execute("revoke all on database postgres, template1 from public")
        conn.execute(
            sql.SQL("grant connect on database {} to {}").format(
                sql.Identifier(WAREHOUSE_DB), sql.Identifier(DASHBOARD_ROLE)
            )
        )
        conn.execute(
            sql.SQL("alter role {} set default_transaction_read_only = on").format(
                sql.Identifier(DASHBOARD_ROLE)
            )
        )
    warehouse_admin = config.admin_url.rsplit("/", 1)[0] + f"/{WAREHOUSE_DB}"
    with psycopg.connect(warehouse_admin, autocommit=True) as conn:
        conn.execute("revoke all on schema public from public")
        for schema in ("raw", "staging", "marts"):
            conn.execute(
                sql.SQL("create schema if not exists {} authorization {}").format(
                    sql.Identifier(schema), sql.Identifier(LOADER_ROLE)
                )
            )
        grant_dashboard_read(conn, LOADER_ROLE, DASHBOARD_ROLE)
    with psycopg.connect(config.warehouse_url) as conn:
        apply_migrations(conn)


def grant_dashboard_read(conn: psycopg.Connection, owner: str, reader: str) -> None:
    """Let ``reader`` read ``marts`` (today's tables and those ``owner`` makes later), only."""
    ident = {"owner": sql.Identifier(owner), "reader": sql.Identifier(reader)}
    for statement in (
        "grant usage on schema marts to {reader}",
        "grant select on all tables in schema marts to {reader}",
        "alter default privileges for role {owner} in schema marts"
        " grant select on tables to {reader}",
        "revoke all on schema raw, staging from {reader}",
    ):
        conn.execute(sql.SQL(statement).format(**ident))


def stop_postgres(config: StackConfig) -> bool:
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
    return postgres_process(config).stop(timeout=30, sig=signal.SIGINT)
