"""Small adapters between Moonwatch and Airflow: its Connections, and its task semantics.

Inside Airflow a task reaches the warehouse and the broker through the Airflow Connections
``moonwatch_warehouse`` (Postgres) and ``moonwatch_kafka`` (its extra is the Kafka client
config, as the provider's sensor reads it), so the DAGs run in any Airflow configured the
usual way. ``make up`` defines both from the settings (``moonwatch.stack.airflow``); where a
Connection is not defined, the setting (``MOONWATCH_WAREHOUSE_URL``, ...) is used instead.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from pydantic import SecretStr

from moonwatch.errors import ConfigurationError, PermanentError
from moonwatch.settings import Settings, is_kafka_security_key, load_settings
from moonwatch.sources.credits import NotYourTurnError

WAREHOUSE_CONN_ID = "moonwatch_warehouse"
KAFKA_CONN_ID = "moonwatch_kafka"


def task_settings() -> Settings:
    """The settings a task runs with: the environment's, validated, with the warehouse URL,
    the Kafka bootstrap servers and the loader's consumer group taken from the Airflow
    Connections where they are defined."""
    settings = load_settings()
    update: dict[str, Any] = {}
    url = warehouse_url_from_connection()
    if url is not None:
        update["warehouse_url"] = SecretStr(url)
    kafka = kafka_config_from_connection()
    if kafka is not None:
        update["kafka_bootstrap"] = _required_extra(kafka, "bootstrap.servers")
        update["consumer_group"] = _required_extra(kafka, "group.id")
        security = {k: str(v) for k, v in kafka.items() if is_kafka_security_key(str(k))}
        if security:
            if "ssl.key.pem" in security:
                from airflow.sdk.log import mask_secret

                # extra_dejson has masked what Airflow counts as secret (every *password*); a
                # client's private key given inline as PEM is a secret it does not count.
                mask_secret(security["ssl.key.pem"])
            update["kafka_security"] = SecretStr(json.dumps(security))
    return settings.model_copy(update=update)


def warehouse_url_from_connection(conn_id: str = WAREHOUSE_CONN_ID) -> str | None:
    """The warehouse's libpq URL from the Postgres Connection ``conn_id``; None if undefined.

    Built by the Postgres provider's hook (host, port, login, password, database) with the
    connection's libpq options (``sslmode``, ...) kept, which the hook's own URI drops.
    """
    connection = _connection(conn_id)
    if connection is None:
        return None
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk.log import mask_secret

    hook = PostgresHook(postgres_conn_id=conn_id)
    options = {
        key: str(value)
        for key, value in connection.extra_dejson.items()
        if key not in hook.ignored_extra_options
    }
    url = hook.sqlalchemy_url.set(drivername="postgresql", query=options)
    rendered = url.render_as_string(hide_password=False)
    mask_secret(rendered)  # the password is masked already; the whole URL too, to be sure
    return rendered


def kafka_config_from_connection(conn_id: str = KAFKA_CONN_ID) -> dict[str, Any] | None:
    """The Kafka client config in the Connection ``conn_id``'s extra; None if undefined."""
    connection = _connection(conn_id)
    return None if connection is None else dict(connection.extra_dejson)


def _connection(conn_id: str) -> Any:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def _required_extra(config: dict[str, Any], key: str) -> str:
    value = str(config.get(key) or "").strip()
    if not value:
        raise ConfigurationError(
            f"the Airflow connection {KAFKA_CONN_ID!r} has no {key!r} in its extra. Set it to "
            "the Kafka client config, e.g. "
            '{"bootstrap.servers": "host:9092", "group.id": "moonwatch-quotes-loader"}.'
        )
    return value


@contextlib.contextmanager
def fail_without_retry_on_permanent_errors() -> Iterator[None]:
    """A ``PermanentError`` (bad key, spent budget, bad setting) fails the task at once:
    retrying cannot help until a person acts, and retries would only spend credits."""
    try:
        yield
    except NotYourTurnError as e:
        # The credit pacer says "not this minute": a skipped run, with the reason, not a failure.
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(str(e)) from e
    except PermanentError as e:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(e)) from e
