"""moonwatch.dbt.environment without services: the profile environment from the warehouse URL."""

from __future__ import annotations

import pytest

from moonwatch.dbt.environment import dbt_env
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
