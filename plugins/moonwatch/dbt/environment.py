"""Where the dbt project is, and the warehouse URL turned into dbt's connection variables.

Outside Airflow (by hand, the tests, the plain dbt tasks) the connection is one URL,
``MOONWATCH_WAREHOUSE_URL``. ``dbt_project/profiles.yml`` reads plain
``MOONWATCH_DBT_HOST|PORT|USER|PASSWORD|DBNAME`` variables; :func:`dbt_env` derives them from
the URL once, here, URL-decoded, so any password works. Nothing secret is written to a file or
passed on a command line. Cosmos' tasks get their profile from the Airflow connection instead
(:func:`moonwatch.dbt.cosmos.profile_config`).
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


def project_dir() -> Path:
    """The dbt project folder: MOONWATCH_DBT_PROJECT_DIR, by default the checkout's dbt_project/."""
    folder = get_settings().dbt_project_dir
    if not (folder / "dbt_project.yml").is_file():
        raise ConfigurationError(
            f"MOONWATCH_DBT_PROJECT_DIR={folder} has no dbt_project.yml: set it to the folder of "
            "Moonwatch's dbt project (the repository's dbt_project/), or unset it for that one"
        )
    return folder


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


# dbt's command line, started by this Python with its cyclic garbage collector off. A dbt command
# is a process of seconds that builds a large object graph (its imports, the manifest) and keeps
# nearly all of it to the end: the collector's passes over it cost CPU and free little. Measured
# here: the per-minute quotes build 4.2-4.9 s of CPU instead of 4.9-5.6 s, a full parse 4.1 s
# instead of 5.5 s, for 20-30 MB more peak memory (~155 MB). Reference counting frees everything
# else as usual. -P keeps the working folder (the dbt project, with its tests/ folder) off the
# import path, as the console script's launch does.
LEAN_DBT = (
    "import gc, sys; gc.disable(); sys.argv[0] = 'dbt'; "
    "from dbt.cli.main import cli; sys.exit(cli())"
)


def dbt_command() -> list[str]:
    """How to start dbt: with this Python (the project's venv), garbage collector off, when dbt
    is installed beside it; else the dbt on PATH."""
    if (Path(sys.executable).parent / "dbt").exists():
        return [sys.executable, "-P", "-c", LEAN_DBT]
    found = shutil.which("dbt")
    if not found:
        raise ConfigurationError("dbt is not installed; run `make install` to create .venv")
    return [found]
