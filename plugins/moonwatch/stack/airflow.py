"""Airflow 3 for the local stack: api-server, scheduler, dag-processor and triggerer.

The LocalExecutor with dbt preloaded (``moonwatch.preloading_executor``; or, with
MOONWATCH_EXECUTOR=celery, the CeleryExecutor and the workers of
``moonwatch.stack.celery_executor``), metadata in its own Postgres database, DAGs from
``dags/`` and our package from ``plugins/``. The four components are forked from one
process that imported Airflow once, so they share its modules' memory
(``moonwatch.stack.airflow_forkserver``). The api-server starts first and must answer before
the others start: tasks talk to its execution API, and one that starts too early fails with
``httpx.ReadTimeout``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests
from pydantic import SecretStr

from moonwatch import alert_channel, kafka
from moonwatch.dbt import docs as dbt_docs
from moonwatch.errors import MoonwatchError, StackError
from moonwatch.settings import load_settings
from moonwatch.stack import airflow_forkserver, environment
from moonwatch.stack.config import AIRFLOW_ADMIN_USER, CHECKOUT, StackConfig
from moonwatch.stack.files import write_private
from moonwatch.stack.process import ManagedProcess, require_free_port, wait_until

logger = logging.getLogger(__name__)

DBT_POOL = "dbt"
DBT_POOL_SLOTS = 3
COMPONENTS = tuple(airflow_forkserver.COMPONENT_ARGS)


@dataclass(frozen=True)
class AirflowSite:
    """Where one Airflow runs: all that differs between the local stack and a container."""

    home: Path
    log_folder: Path
    docs_dir: Path
    listen_host: str
    listen_port: int
    public_url: str  # MOONWATCH_AIRFLOW_URL: where a browser reaches the api-server
    execution_api_url: str  # where tasks reach it
    metadata_db_url: str
    secret_key: str


def airflow_config(
    site: AirflowSite,
    *,
    warehouse_url: str,
    kafka_bootstrap: str,
    consumer_group: str,
    kafka_security: dict[str, str] | None = None,
    alert_urls: str | None = None,
    celery_broker_url: str | None = None,
) -> dict[str, str]:
    """Airflow's configuration and Connections: the one definition for local mode
    (:func:`airflow_env`) and Docker (``docker/entrypoint.sh`` runs :func:`main`).
    With ``celery_broker_url``, the CeleryExecutor (MOONWATCH_EXECUTOR=celery)."""
    return {
        "AIRFLOW_HOME": str(site.home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(CHECKOUT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(CHECKOUT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Small, for memory (~200 MB a worker): 3 slots for dbt's pool, the rest for quotes.
        "AIRFLOW__CORE__PARALLELISM": "6",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": site.metadata_db_url,
        # For crypto_maintenance's `airflow db clean`: Airflow 3 blanks the option above in
        # task processes, so the cleanup hands the URL to its own subprocess.
        "MOONWATCH_AIRFLOW_DB_URL": site.metadata_db_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": site.execution_api_url,
        "AIRFLOW__API__BASE_URL": site.public_url,
        "AIRFLOW__API__HOST": site.listen_host,
        "AIRFLOW__API__PORT": str(site.listen_port),
        "AIRFLOW__API__SECRET_KEY": site.secret_key,
        "AIRFLOW__API_AUTH__JWT_SECRET": site.secret_key,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{AIRFLOW_ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(site.home / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        # Re-parse an unchanged DAG file every 10 minutes, not every 30 s: each parse is a
        # process importing the DAG's modules (Cosmos, the dbt manifest), and all 12 files
        # every 30 s (~2.7 s of parsing) cost ~0.09 cores at rest. An edited file is still
        # re-parsed at once (file_parsing_sort_mode modified_time); a dbt project change
        # reaches the Cosmos DAGs within this interval.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        # The Cosmos DAGs read dbt's manifest at parse time; when a dbt file changed they
        # re-parse the project first (~10-30 s on 2 busy cores), past the 30 s default.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
        # An idle scheduler loop (nothing queued, nothing finished) sleeps this long, at most,
        # before polling the metadata database again. 1 s (the default) cost ~0.05 cores at rest
        # between the scheduler and Postgres; 2 s costs ~0.035, and adds 0.5 s on average to a
        # hop it is idle for (a sensor's success, an Asset event) on a path that takes ~10 s.
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "2",
        # Its own HTTP port (8974) could clash locally; Docker's scheduler turns it on.
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(site.log_folder),
        # Airflow chmods task logs to 0664 (folders 0775) by default, whatever the umask.
        "AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FOLDER_PERMISSIONS": "0o700",
        "AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FILE_PERMISSIONS": "0o600",
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "True",
        # No usage tracking calls from Cosmos: this machine may have no way out, and no need.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "DO_NOT_TRACK": "1",
        # dbt docs in the Airflow UI (Browse): Cosmos' plugin serves this folder from the
        # api-server, and the crypto_dbt_docs DAG writes it.
        dbt_docs.DOCS_PROJECTS_ENV: dbt_docs.cosmos_docs_projects(site.docs_dir),
        # Connections and Variables the DAGs use, derived from the settings (never stored in code).
        "AIRFLOW_CONN_MOONWATCH_WAREHOUSE": warehouse_url,
        "AIRFLOW_CONN_MOONWATCH_KAFKA": json.dumps(
            {
                "conn_type": "kafka",
                "extra": {
                    **kafka.group_client_config(kafka_bootstrap, consumer_group),
                    # A secured cluster's settings, for the sensor and for every task.
                    **(kafka_security or {}),
                },
            }
        ),
        # Where alerts go, when MOONWATCH_ALERT_URLS is set (else a connection made in the UI).
        **alert_channel.connection_env(alert_urls),
        **_executor_config(site, celery_broker_url),
    }


# The LocalExecutor, with dbt imported before its workers fork (that module says why); named, not
# imported, so the launcher does not import Airflow.
LOCAL_EXECUTOR = "moonwatch.preloading_executor.PreloadingLocalExecutor"
# Task slots per Celery worker: two workers x 3 = the LocalExecutor's parallelism of 6.
CELERY_WORKER_CONCURRENCY = 3


def _executor_config(site: AirflowSite, celery_broker_url: str | None) -> dict[str, str]:
    if celery_broker_url is None:
        return {"AIRFLOW__CORE__EXECUTOR": LOCAL_EXECUTOR}
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": celery_broker_url,
        # Task states go to the metadata database, not to the broker: Redis keeps nothing on
        # disk, and its loss must cost only queued messages, which the scheduler re-queues.
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + site.metadata_db_url,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(CELERY_WORKER_CONCURRENCY),
    }


def airflow_env(config: StackConfig) -> dict[str, str]:
    """Environment for every local Airflow process (and for `airflow` CLI calls made by hand)."""
    site = AirflowSite(
        home=config.airflow_home,
        log_folder=config.log_dir / "airflow",
        docs_dir=dbt_docs.docs_dir_for_home(config.home),
        listen_host="127.0.0.1",
        listen_port=config.airflow_port,
        public_url=config.airflow_url,
        execution_api_url=f"{config.airflow_url}/execution/",
        metadata_db_url=config.airflow_db_url,
        secret_key=config.secrets["MOONWATCH_AIRFLOW_SECRET_KEY"],
    )
    return {
        # Only what the tasks need (no dashboard role, nothing else the launcher was given).
        **environment.airflow_task_env(config),
        # `airflow standalone`-style processes spawn `airflow` by name: the venv must be on PATH.
        "PATH": f"{config.venv_bin}{os.pathsep}{config.env.get('PATH', '')}",
        **airflow_config(
            site,
            warehouse_url=config.warehouse_url,
            kafka_bootstrap=config.kafka_bootstrap,
            consumer_group=config.consumer_group,
            alert_urls=config.env.get(alert_channel.ALERT_URLS_ENV),
            celery_broker_url=config.celery_broker_url if config.celery else None,
        ),
    }


def _write_password_file(config: StackConfig) -> None:
    config.airflow_home.mkdir(parents=True, exist_ok=True)
    write_private(
        config.airflow_home / "passwords.json",
        json.dumps({AIRFLOW_ADMIN_USER: config.secrets["MOONWATCH_AIRFLOW_ADMIN_PASSWORD"]}),
    )


def migrate_metadata_db(config: StackConfig) -> None:
    set_up_metadata_db(str(config.venv_bin / "airflow"), airflow_env(config))


def set_up_metadata_db(airflow: str = "airflow", env: dict[str, str] | None = None) -> None:
    """`airflow db migrate`, then the dbt pool: local `up` and Docker's airflow-init run this."""
    # dbt's tasks run in their own pool so a build never takes every executor slot from the
    # quote producer and loader.
    pool = [
        DBT_POOL,
        str(DBT_POOL_SLOTS),
        "dbt builds (crypto_transform, crypto_transform_reference)",
    ]
    for argv, what in (
        (["db", "migrate"], "`airflow db migrate`"),
        (["pools", "set", *pool], f"creating the Airflow pool {DBT_POOL!r}"),
    ):
        result = subprocess.run([airflow, *argv], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise StackError(f"{what} failed:\n{result.stderr.strip()[-3000:]}")


def component_process(config: StackConfig, component: str) -> ManagedProcess:
    return airflow_forkserver.component_process(config.run_dir, config.log_dir, component)


def forkserver_process(config: StackConfig) -> ManagedProcess:
    return ManagedProcess(airflow_forkserver.NAME, config.run_dir, config.log_dir)


def processes(config: StackConfig) -> list[ManagedProcess]:
    """The fork server first, then the components it forks."""
    return [forkserver_process(config), *(component_process(config, c) for c in COMPONENTS)]


def start_airflow(config: StackConfig, timeout: float = 180.0) -> None:
    """Start whichever of the fork server and the components is not running."""
    _write_password_file(config)
    from moonwatch.dbt.manifest import ensure_manifest

    # Parse the dbt project once, here, so no DAG parse or task start has to.
    ensure_manifest()
    api = component_process(config, "api-server")
    if not api.is_running():
        require_free_port(config.airflow_port, "the Airflow api-server", "MOONWATCH_AIRFLOW_PORT")
        migrate_metadata_db(config)
    forkserver = forkserver_process(config)
    forkserver.start(
        [
            *(sys.executable, "-m", "moonwatch.stack.airflow_forkserver"),
            *(str(config.run_dir), str(config.log_dir)),
        ],
        env=airflow_env(config),
        cwd=config.airflow_home,
    )
    wait_until(
        lambda: airflow_forkserver.ready(config.run_dir),
        "the Airflow fork server to import Airflow",
        timeout,
        forkserver,
    )
    airflow_forkserver.request_component(config.run_dir, "api-server")
    wait_until(
        lambda: airflow_healthy(config.airflow_url, metadb_only=True),
        "the Airflow api-server",
        timeout,
        api,
    )
    for component in COMPONENTS[1:]:
        airflow_forkserver.request_component(config.run_dir, component)


# Right after `up` every DAG's first runs call the api-server's execution API at once, and on
# 2 cores its health answer took 3.5 s: a slow answer is a busy server, not a dead one.
HEALTH_TIMEOUT_SECONDS = 15.0
COMPONENT_HEALTH = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def airflow_health(url: str) -> dict:
    response = requests.get(f"{url}/api/v2/monitor/health", timeout=HEALTH_TIMEOUT_SECONDS)
    response.raise_for_status()
    return response.json()


def airflow_problems(url: str, metadb_only: bool = False) -> list[str]:
    """What keeps Airflow from being healthy, one phrase per component; empty when healthy."""
    try:
        health = airflow_health(url)
    except (requests.RequestException, ValueError) as e:
        return [f"the api-server's health check at {url} failed ({type(e).__name__})"]
    parts = COMPONENT_HEALTH[:1] if metadb_only else COMPONENT_HEALTH
    problems = []
    for part in parts:
        state = health.get(part) or {}
        if state.get("status") != "healthy":
            beat = next((v for k, v in state.items() if k.endswith("heartbeat") and v), None)
            seen = f"last heartbeat {beat}" if beat else "no heartbeat yet"
            problems.append(f"{part} {state.get('status') or 'not running'} ({seen})")
    return problems


def airflow_healthy(url: str, metadb_only: bool = False) -> bool:
    return not airflow_problems(url, metadb_only)


def main(argv: list[str] | None = None) -> int:
    """For Docker's images, from the same definitions the local launcher uses:

    ``env --home H --listen HOST:PORT --execution-api-url U`` prints ``export`` lines of
    Airflow's configuration (docker/entrypoint.sh evaluates them); what the container's
    environment already sets wins (a per-service override in docker-compose.yml).
    ``migrate`` sets up the metadata database (airflow-init).
    """
    parser = argparse.ArgumentParser(prog="python -m moonwatch.stack.airflow")
    commands = parser.add_subparsers(dest="command", required=True)
    env = commands.add_parser("env", help="Airflow's configuration as export lines")
    env.add_argument("--home", type=Path, required=True, help="AIRFLOW_HOME")
    env.add_argument("--listen", required=True, help="the api-server's HOST:PORT")
    env.add_argument("--execution-api-url", required=True, help="where tasks reach it")
    commands.add_parser("migrate", help="`airflow db migrate` and the dbt pool")
    args = parser.parse_args(argv)
    try:
        if args.command == "migrate":
            set_up_metadata_db()
            return 0
        values = _container_config(args.home, args.listen, args.execution_api_url)
    except MoonwatchError as e:
        print(f"moonwatch: {e}", file=sys.stderr)
        return 2
    for name, value in values.items():
        if name not in os.environ:
            print(f"export {name}={shlex.quote(value)}")
    return 0


def _container_config(home: Path, listen: str, execution_api_url: str) -> dict[str, str]:
    settings = load_settings()
    host, _, port = listen.rpartition(":")
    site = AirflowSite(
        home=home,
        log_folder=home / "logs",
        docs_dir=home / "dbt_docs",
        listen_host=host,
        listen_port=int(port),
        public_url=settings.airflow_url,
        execution_api_url=execution_api_url,
        metadata_db_url=_required(settings.airflow_db_url, "MOONWATCH_AIRFLOW_DB_URL"),
        secret_key=_required(settings.airflow_secret_key, "MOONWATCH_AIRFLOW_SECRET_KEY"),
    )
    return airflow_config(
        site,
        warehouse_url=settings.require_warehouse_url(),
        kafka_bootstrap=settings.kafka_bootstrap,
        consumer_group=settings.consumer_group,
        kafka_security=settings.kafka_security_config(),
        alert_urls=os.environ.get(alert_channel.ALERT_URLS_ENV),
        celery_broker_url=(
            _required(settings.celery_broker_url, "MOONWATCH_CELERY_BROKER_URL")
            if settings.executor == "celery"
            else None
        ),
    )


def _required(value: SecretStr | None, name: str) -> str:
    if value is None or not value.get_secret_value():
        raise StackError(f"{name} is not set: docker-compose.yml passes it to Airflow's services")
    return value.get_secret_value()


if __name__ == "__main__":
    sys.exit(main())
