"""Where the dbt project is, and the warehouse URL turned into dbt's connection variables.

The warehouse connection contract is one URL: ``MOONWATCH_WAREHOUSE_URL`` outside Airflow, the
Airflow connection ``moonwatch_warehouse`` inside it. ``dbt_project/profiles.yml`` reads plain
``MOONWATCH_DBT_HOST|PORT|USER|PASSWORD|DBNAME`` variables; :func:`dbt_env` derives them once,
here, URL-decoded, so any password works. Nothing secret is written to a file or passed on a
command line.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from moonwatch.errors import ConfigurationError
from moonwatch.settings import get_settings

DBT_PROFILE = "moonwatch"
DBT_TARGET = "warehouse"
# The Airflow connection the launcher defines (AIRFLOW_CONN_MOONWATCH_WAREHOUSE) and the DAGs use.
WAREHOUSE_CONN_ID = "moonwatch_warehouse"


def project_dir() -> Path:
    """The dbt project folder: MOONWATCH_DBT_PROJECT_DIR, by default the checkout's dbt_project/."""
    return get_settings().dbt_project_dir


def dbt_env(warehouse_url: str) -> dict[str, str]:
    """The MOONWATCH_DBT_* variables profiles.yml reads, from a postgresql:// URL."""
    try:
        parts = urlsplit(warehouse_url)
        port = parts.port
    except ValueError as e:
        raise ConfigurationError(
            "MOONWATCH_WAREHOUSE_URL is not a valid URL; write it as "
            "postgresql://user:password@host:port/database"
        ) from e
    scheme = parts.scheme.split("+", 1)[0]
    database = parts.path.lstrip("/")
    if scheme not in ("postgresql", "postgres") or not parts.hostname or not database:
        raise ConfigurationError(
            "MOONWATCH_WAREHOUSE_URL must look like postgresql://user:password@host:port/database "
            f"(got scheme {parts.scheme!r}, host {parts.hostname!r}, database {database!r})"
        )
    return {
        "MOONWATCH_DBT_HOST": parts.hostname,
        "MOONWATCH_DBT_PORT": str(port or 5432),
        "MOONWATCH_DBT_USER": unquote(parts.username or ""),
        "MOONWATCH_DBT_PASSWORD": unquote(parts.password or ""),
        "MOONWATCH_DBT_DBNAME": unquote(database),
    }


def connection_warehouse_url(conn_id: str = WAREHOUSE_CONN_ID) -> str:
    """The warehouse URL of an Airflow connection (inside a task), so the DAGs run in any Airflow
    where the connection is defined, whatever its environment."""
    from airflow.sdk import Connection

    return Connection.get(conn_id).get_uri()


def dbt_executable() -> str:
    """The dbt next to this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    if beside.exists():
        return str(beside)
    found = shutil.which("dbt")
    if not found:
        raise ConfigurationError("dbt is not installed; run `make install` to create .venv")
    return found
