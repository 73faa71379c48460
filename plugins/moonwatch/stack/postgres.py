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

from moonwatch.errors import StackError
from moonwatch.stack import environment
from moonwatch.stack.config import PG_ADMIN_USER, StackConfig
from moonwatch.stack.config import WAREHOUSE_DB as WAREHOUSE_DB  # re-exported for tests
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


# Roles, databases, schemas and grants: one definition for local mode and Docker (its
# `postgres-init` service runs the same script), so the two cannot drift apart.
BOOTSTRAP_SCRIPT = Path(__file__).with_name("postgres_init") / "bootstrap.sh"
BOOTSTRAP_SECRETS = (
    "MOONWATCH_PG_ADMIN_PASSWORD",
    "MOONWATCH_LOADER_PASSWORD",
    "MOONWATCH_DASHBOARD_PASSWORD",
    "MOONWATCH_AIRFLOW_DB_PASSWORD",
)


def bootstrap_warehouse(config: StackConfig) -> None:
    """Roles, databases, schemas and grants (``postgres_init/``), then the raw schema's
    migrations; safe to run on every start."""
    env = {
        **environment.basics(config.env),
        # psql from the same installation as the server (it may not be on PATH).
        "PATH": f"{find_pg_bindir()}{os.pathsep}{config.env.get('PATH', os.defpath)}",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(config.pg_port),
        "PGUSER": PG_ADMIN_USER,
        "PGAPPNAME": "moonwatch-bootstrap",
        # Passwords reach psql through its environment (\getenv), never its command line.
        **{name: config.secrets[name] for name in BOOTSTRAP_SECRETS},
    }
    result = subprocess.run(
        ["bash", str(BOOTSTRAP_SCRIPT)], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise StackError(
            f"bootstrapping the warehouse's roles and schemas failed:\n{result.stderr[-2000:]}"
        )
    with psycopg.connect(config.warehouse_url) as conn:
        apply_migrations(conn)


def stop_postgres(config: StackConfig) -> bool:
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
    return postgres_process(config).stop(timeout=30, sig=signal.SIGINT)
