"""moonwatch.dbt.environment without services: the profile environment from the warehouse URL,
and where the project is."""

from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path

import pytest

from moonwatch import settings
from moonwatch.dbt.environment import dbt_env, project_dir
from moonwatch.dbt.manifest import ensure_manifest
from moonwatch.errors import ConfigurationError


def test_dbt_env_splits_and_decodes_the_warehouse_url() -> None:
    env = dbt_env("postgresql://moon%40loader:p%40ss%3Aw%2Frd@db.example:6543/wh%2D1")
    assert env == {
        "MOONWATCH_DBT_HOST": "db.example",
        "MOONWATCH_DBT_PORT": "6543",
        "MOONWATCH_DBT_USER": "moon@loader",
        "MOONWATCH_DBT_PASSWORD": "p@ss:w/rd",
        "MOONWATCH_DBT_DBNAME": "wh-1",
    }


def test_dbt_env_defaults_the_port_and_accepts_a_driver_suffix() -> None:
    env = dbt_env("postgresql+psycopg://u:p@localhost/moonwatch")
    assert env["MOONWATCH_DBT_PORT"] == "5432"
    assert env["MOONWATCH_DBT_DBNAME"] == "moonwatch"


@pytest.mark.parametrize(
    "url", ["mysql://u:p@h/db", "postgresql://u:p@h:99999/db", "postgresql://u:p@h/", "nonsense"]
)
def test_dbt_env_refuses_what_is_not_a_postgres_url(url: str) -> None:
    with pytest.raises(ConfigurationError, match="MOONWATCH_WAREHOUSE_URL"):
        dbt_env(url)


def test_the_dbt_project_can_live_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MOONWATCH_DBT_PROJECT_DIR moves the project (a deployment's own layout); the DAGs'
    manifest is parsed there, and a folder without the project is refused by name."""
    moved = tmp_path / "elsewhere" / "dbt"
    shutil.copytree(
        project_dir(), moved, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages")
    )
    monkeypatch.setenv("MOONWATCH_DBT_PROJECT_DIR", str(moved))
    # Settings are read once a process; this test reads them afresh.
    monkeypatch.setattr(settings, "_cached", lru_cache(maxsize=1)(settings.load_settings))
    assert project_dir() == moved
    assert ensure_manifest() == moved / "target" / "airflow" / "manifest.json"
    assert ensure_manifest().is_file()

    monkeypatch.setenv("MOONWATCH_DBT_PROJECT_DIR", str(tmp_path / "empty"))
    settings._cached.cache_clear()
    with pytest.raises(ConfigurationError, match=r"PROJECT_DIR=.*no dbt_project\.yml"):
        project_dir()
