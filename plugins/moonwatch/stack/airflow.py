"""Airflow 3 for the local stack: api-server, scheduler, dag-processor and triggerer.

LocalExecutor, metadata in its own Postgres database, DAGs from ``dags/`` and our package from
``plugins/``. The api-server starts first and must answer before the others start: tasks talk
to its execution API, and one that starts too early fails with ``httpx.ReadTimeout``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import requests

from moonwatch import alert_channel
from moonwatch.dbt import docs as dbt_docs
from moonwatch.errors import StackError
from moonwatch.settings import PROJECT_ROOT
from moonwatch.stack import environment
from moonwatch.stack.config import AIRFLOW_ADMIN_USER, StackConfig
from moonwatch.stack.files import write_private
from moonwatch.stack.process import ManagedProcess, require_free_port, wait_until

logger = logging.getLogger(__name__)

DBT_POOL = "dbt"
DBT_POOL_SLOTS = 3
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
DAG_IDS = (
    "crypto_quotes_produce",
    "crypto_quotes_load",
    "crypto_listings_load",
    "crypto_fx_load",
    "crypto_transform",
    "crypto_transform_reference",
)


def airflow_env(config: StackConfig) -> dict[str, str]:
    """Environment for every Airflow process (and for `airflow` CLI calls made by hand)."""
    home = config.airflow_home
    env = {
        # Only what the tasks need (no dashboard role, nothing else the launcher was given).
        **environment.airflow_task_env(config),
        # `airflow standalone`-style processes spawn `airflow` by name: the venv must be on PATH.
        "PATH": f"{config.venv_bin}{os.pathsep}{config.env.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Small, for memory (~200 MB a worker): 3 slots for dbt's pool, the rest for quotes.
        "AIRFLOW__CORE__PARALLELISM": "6",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": config.airflow_db_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{config.airflow_url}/execution/",
        "AIRFLOW__API__BASE_URL": config.airflow_url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(config.airflow_port),
        "AIRFLOW__API__SECRET_KEY": config.secrets["MOONWATCH_AIRFLOW_SECRET_KEY"],
        "AIRFLOW__API_AUTH__JWT_SECRET": config.secrets["MOONWATCH_AIRFLOW_SECRET_KEY"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{AIRFLOW_ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        # crypto_transform reads dbt's manifest at parse time; when a dbt file changed it
        # re-parses the project first (~10-30 s on 2 busy cores), past the 30 s default.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(config.log_dir / "airflow"),
        # Airflow chmods task logs to 0664 (folders 0775) by default, whatever the umask.
        "AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FOLDER_PERMISSIONS": "0o700",
        "AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FILE_PERMISSIONS": "0o600",
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "True",
        # No usage tracking calls from Cosmos: this machine may have no way out, and no need.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "DO_NOT_TRACK": "1",
        # dbt docs in the Airflow UI (Browse): Cosmos' plugin serves this folder from the
        # api-server, and the crypto_dbt_docs DAG writes it.
        dbt_docs.DOCS_PROJECTS_ENV: dbt_docs.cosmos_docs_projects(
            dbt_docs.docs_dir_for_home(config.home)
        ),
        # Connections and Variables the DAGs use, derived from the settings (never stored in code).
        "AIRFLOW_CONN_MOONWATCH_WAREHOUSE": config.warehouse_url,
        "AIRFLOW_CONN_MOONWATCH_KAFKA": json.dumps(
            {
                "conn_type": "kafka",
                "extra": {
                    "bootstrap.servers": config.kafka_bootstrap,
                    "group.id": config.consumer_group,
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "session.timeout.ms": 6000,
                },
            }
        ),
        # Where alerts go, when MOONWATCH_ALERT_URLS is set (else a connection made in the UI).
        **alert_channel.connection_env(config.env.get(alert_channel.ALERT_URLS_ENV)),
    }
    return env


def _write_password_file(config: StackConfig) -> None:
    config.airflow_home.mkdir(parents=True, exist_ok=True)
    write_private(
        config.airflow_home / "passwords.json",
        json.dumps({AIRFLOW_ADMIN_USER: config.secrets["MOONWATCH_AIRFLOW_ADMIN_PASSWORD"]}),
    )


def migrate_metadata_db(config: StackConfig) -> None:
    result = subprocess.run(
        [str(config.venv_bin / "airflow"), "db", "migrate"],
        env=airflow_env(config),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StackError(f"`airflow db migrate` failed:\n{result.stderr.strip()[-3000:]}")
    # dbt's tasks run in their own pool so a build never takes every executor slot from the
    # quote producer and loader.
    result = subprocess.run(
        [
            str(config.venv_bin / "airflow"),
            "pools",
            "set",
            DBT_POOL,
            str(DBT_POOL_SLOTS),
            "dbt builds (crypto_transform, crypto_transform_reference)",
        ],
        env=airflow_env(config),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StackError(f"creating the Airflow pool {DBT_POOL!r} failed:\n{result.stderr[-2000:]}")


def component_process(config: StackConfig, component: str) -> ManagedProcess:
    return ManagedProcess(f"airflow-{component}", config.run_dir, config.log_dir)


def start_airflow(config: StackConfig, timeout: float = 180.0) -> None:
    _write_password_file(config)
    from moonwatch.dbt.manifest import ensure_manifest

    # Parse the dbt project once, here, so no DAG parse or task start has to.
    ensure_manifest()
    api = component_process(config, "api-server")
    if not api.is_running():
        require_free_port(config.airflow_port, "the Airflow api-server", "MOONWATCH_AIRFLOW_PORT")
        migrate_metadata_db(config)
    env = airflow_env(config)
    airflow = str(config.venv_bin / "airflow")
    api.start(
        [airflow, "api-server", "--host", "127.0.0.1", "--port", str(config.airflow_port)],
        env=env,
        cwd=config.airflow_home,
    )
    wait_until(
        lambda: airflow_healthy(config.airflow_url, metadb_only=True),
        "the Airflow api-server",
        timeout,
        api,
    )
    for component in COMPONENTS[1:]:
        argv = [airflow, component]
        if component in ("scheduler", "triggerer"):
            argv.append("--skip-serve-logs")
        component_process(config, component).start(argv, env=env, cwd=config.airflow_home)


def airflow_health(url: str) -> dict:
    response = requests.get(f"{url}/api/v2/monitor/health", timeout=3)
    response.raise_for_status()
    return response.json()


def airflow_healthy(url: str, metadb_only: bool = False) -> bool:
    health = airflow_health(url)
    parts = (
        ["metadatabase"]
        if metadb_only
        else ["metadatabase", "scheduler", "triggerer", "dag_processor"]
    )
    return all((health.get(p) or {}).get("status") == "healthy" for p in parts)


def stop_airflow(config: StackConfig) -> list[str]:
    """Stop the four components at once; each gets 10 s (Docker's stop grace period) to exit
    gracefully, then SIGKILL. Nothing is lost either way: a load killed mid-batch rolls back
    in Postgres and leaves its Kafka offsets uncommitted."""
    with ThreadPoolExecutor(max_workers=len(COMPONENTS)) as pool:
        results = pool.map(
            lambda c: component_process(config, c).stop(timeout=10), reversed(COMPONENTS)
        )
        return [c for c, stopped in zip(reversed(COMPONENTS), results, strict=True) if stopped]
