"""MOONWATCH_EXECUTOR=celery: Redis as the Celery broker and two Celery workers.

Redis is Debian's ``redis-server``, on loopback, with a generated password. Its configuration,
password included, goes in on standard input (``redis-server -``): never on the command line,
where ``ps`` shows it to every local account, and never in a file. It keeps nothing on disk
(no RDB snapshot, no AOF) and runs in its own folder under the stack home: a queued task lost
with it is re-queued by the scheduler, whose state is in Postgres.

Each worker (``airflow celery worker``) runs in its own folder under the stack home, as if on
its own machine: a task that reads or writes a relative path finds nothing there that another
worker, the scheduler or the launcher left, so the end-to-end test catches it. Each reports its
own name as the task instances' hostname (``worker_hostname``), so which worker ran a task is
in the metadata database.
"""

from __future__ import annotations

import os
import shutil
import socket

from moonwatch.errors import StackError
from moonwatch.stack import environment
from moonwatch.stack.config import StackConfig
from moonwatch.stack.process import ManagedProcess, require_free_port, wait_until

WORKERS = ("worker-1", "worker-2")
# The worker's name, for worker_hostname() in its task processes (set in its environment only).
WORKER_NAME_ENV = "MOONWATCH_CELERY_WORKER"


def redis_process(config: StackConfig) -> ManagedProcess:
    return ManagedProcess("redis", config.run_dir, config.log_dir)


def redis_binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if not found:
        raise StackError(
            "MOONWATCH_EXECUTOR=celery needs Redis as the Celery broker, and redis-server is not "
            "installed: `sudo apt-get install redis-server` (or set MOONWATCH_EXECUTOR=local)"
        )
    return found


def redis_config(config: StackConfig) -> str:
    """redis.conf, fed on standard input: loopback, password, nothing written to disk."""
    return "\n".join(
        [
            "bind 127.0.0.1",
            f"port {config.redis_port}",
            "protected-mode yes",
            f"requirepass {config.secrets['MOONWATCH_REDIS_PASSWORD']}",
            # No snapshot and no append-only file: nothing lands on disk, in the checkout or
            # anywhere else (the scheduler re-queues what a lost broker held).
            'save ""',
            "appendonly no",
            f"dir {config.redis_dir}",
            "daemonize no",
            "loglevel warning",
            "",
        ]
    )


def start_redis(config: StackConfig, timeout: float = 30.0) -> None:
    process = redis_process(config)
    if process.is_running():
        return
    require_free_port(config.redis_port, "the Celery broker (Redis)", "MOONWATCH_REDIS_PORT")
    config.redis_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    process.start(
        [redis_binary(), "-"],
        env=environment.basics(config.env),
        cwd=config.redis_dir,
        stdin_text=redis_config(config),
    )
    wait_until(lambda: redis_healthy(config), "Redis to answer PING", timeout, process)


def redis_healthy(config: StackConfig) -> bool:
    import redis

    client = redis.Redis(
        host="127.0.0.1",
        port=config.redis_port,
        password=config.secrets["MOONWATCH_REDIS_PASSWORD"],
        socket_timeout=2,
        socket_connect_timeout=2,
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def worker_process(config: StackConfig, worker: str) -> ManagedProcess:
    return ManagedProcess(f"celery-{worker}", config.run_dir, config.log_dir)


def celery_name(worker: str) -> str:
    """The worker's Celery node name (``-H``), which the health check pings."""
    return f"moonwatch-{worker}@{socket.gethostname()}"


def start_workers(config: StackConfig) -> None:
    """Start every worker not running; `up` then waits until each answers a ping."""
    from moonwatch.stack.airflow import airflow_env

    airflow = str(config.venv_bin / "airflow")
    for worker in WORKERS:
        process = worker_process(config, worker)
        if process.is_running():
            continue
        folder = config.celery_worker_dir(worker)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        argv = [airflow, "celery", "worker", "--celery-hostname", celery_name(worker)]
        # Two workers on one machine cannot both serve logs on 8793; the api-server reads the
        # task logs from the shared log folder instead.
        argv.append("--skip-serve-logs")
        env = environment.celery_worker_env(airflow_env(config))
        env[WORKER_NAME_ENV] = worker
        env["HOME"] = str(folder)
        process.start(argv, env=env, cwd=folder)


def workers_healthy(config: StackConfig) -> bool:
    """Every worker answers a Celery ping through the broker."""
    from celery import Celery

    app = Celery(broker=config.celery_broker_url)
    try:
        names = [celery_name(w) for w in WORKERS]
        replies = app.control.ping(destination=names, timeout=2.0)
        answered = {name for reply in replies for name in reply}
        return answered >= set(names)
    finally:
        app.close()


def worker_hostname() -> str:
    """Airflow's ``hostname_callable`` in a worker's tasks: this machine and the worker's name,
    so task instances say which worker ran them."""
    return f"{socket.getfqdn()}-{os.environ.get(WORKER_NAME_ENV, 'celery')}"
