"""The settings a task runs with inside Airflow: the Connections win over the MOONWATCH_ ones."""

from __future__ import annotations

import json

import psycopg
import pytest

from moonwatch.airflow_glue import task_settings
from moonwatch.errors import ConfigurationError


def _kafka_connection(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    connection = {"conn_type": "kafka", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_MOONWATCH_KAFKA", json.dumps(connection))


def test_task_settings_take_the_warehouse_and_kafka_from_the_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOONWATCH_WAREHOUSE_URL", "postgresql://env:env@127.0.0.1:1/env")
    monkeypatch.setenv("MOONWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv(
        "AIRFLOW_CONN_MOONWATCH_WAREHOUSE",
        "postgresql://loader:p%40ss%2Fw@db.example:6543/warehouse"
        "?sslmode=verify-full&application_name=moonwatch",
    )
    _kafka_connection(monkeypatch, **{"bootstrap.servers": "kafka:9092", "group.id": "loaders"})
    settings = task_settings()
    assert psycopg.conninfo.conninfo_to_dict(settings.require_warehouse_url()) == {
        "user": "loader",
        "password": "p@ss/w",
        "host": "db.example",
        "port": "6543",
        "dbname": "warehouse",
        # libpq options of the connection are kept (the hook's own URI drops them).
        "sslmode": "verify-full",
        "application_name": "moonwatch",
    }
    assert (settings.kafka_bootstrap, settings.consumer_group) == ("kafka:9092", "loaders")


def test_task_settings_fall_back_to_the_settings_without_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "postgresql://env:env@127.0.0.1:1/env"
    monkeypatch.setenv("MOONWATCH_WAREHOUSE_URL", url)
    monkeypatch.setenv("MOONWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:2")
    monkeypatch.setenv("MOONWATCH_CONSUMER_GROUP", "env-group")
    monkeypatch.delenv("AIRFLOW_CONN_MOONWATCH_WAREHOUSE", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_MOONWATCH_KAFKA", raising=False)
    settings = task_settings()
    assert settings.require_warehouse_url() == url
    assert (settings.kafka_bootstrap, settings.consumer_group) == ("127.0.0.1:2", "env-group")


def test_task_settings_name_what_the_kafka_connection_lacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _kafka_connection(monkeypatch, **{"bootstrap.servers": "kafka:9092"})
    with pytest.raises(ConfigurationError, match=r"'moonwatch_kafka' has no 'group\.id'"):
        task_settings()
