"""A Kafka cluster that needs authentication: librdkafka's security settings reach every
Moonwatch client (producer and loader), from MOONWATCH_KAFKA_SECURITY or, inside Airflow,
from the moonwatch_kafka connection's extra, and are checked and kept secret on the way.

No authenticating broker runs here (the local tansu speaks plaintext only), so the proof that
the settings reach the clients is that a client told to speak TLS to this plaintext broker
fails, where the same client without them succeeds.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg
import pytest

from moonwatch.airflow_glue import task_settings
from moonwatch.errors import BrokerError, ConfigurationError
from moonwatch.kafka import produce_quotes
from moonwatch.pipeline import load_quotes
from moonwatch.settings import Settings
from tests.factories import quote_message

TLS = {"security.protocol": "SSL"}
SASL = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "moonwatch",
    "sasl.password": "s3cret-sasl-password",
}


def test_settings_read_the_security_settings_as_json() -> None:
    settings = Settings(MOONWATCH_KAFKA_SECURITY=json.dumps(SASL))
    assert settings.kafka_security_config() == SASL
    assert "s3cret-sasl-password" not in repr(settings)
    assert Settings().kafka_security_config() == {}


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("security.protocol=SSL", "is not a JSON object"),
        ('["SSL"]', "is not a JSON object"),
        (
            '{"security.protocol": "SSL", "bootstrap.servers": "evil:9092", "group.id": "x"}',
            r"not \['bootstrap.servers', 'group.id'\]",
        ),
    ],
)
def test_settings_refuse_anything_but_security_settings(raw: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says) as caught:
        Settings(MOONWATCH_KAFKA_SECURITY=raw).kafka_security_config()
    assert "evil:9092" not in str(caught.value)


def test_task_settings_take_the_security_settings_from_the_kafka_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = {"bootstrap.servers": "kafka:9093", "group.id": "loaders", **SASL}
    connection = {"conn_type": "kafka", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_MOONWATCH_KAFKA", json.dumps(connection))
    monkeypatch.delenv("MOONWATCH_KAFKA_SECURITY", raising=False)
    settings = task_settings()
    assert settings.kafka_security_config() == SASL
    assert (settings.kafka_bootstrap, settings.consumer_group) == ("kafka:9093", "loaders")
    assert "s3cret-sasl-password" not in repr(settings)


@pytest.mark.integration
def test_the_producer_speaks_what_the_security_settings_say(
    kafka: str, make_topic: Callable[[], str]
) -> None:
    topic = make_topic()
    message = quote_message(coin_id=1)
    with pytest.raises(BrokerError, match="1 of 1 messages were not delivered"):
        produce_quotes([message], kafka, topic, delivery_timeout_s=5, security=TLS)
    assert produce_quotes([message], kafka, topic, delivery_timeout_s=5) == 1


@pytest.mark.integration
def test_the_loader_speaks_what_the_security_settings_say(
    kafka: str, make_topic: Callable[[], str], warehouse_url: str, warehouse: psycopg.Connection
) -> None:
    # `warehouse` empties raw first: a row an earlier test stored for these quotes would make
    # one of them a duplicate, not a row inserted.
    topic = make_topic()
    produce_quotes([quote_message(coin_id=1027, minute=m) for m in range(3)], kafka, topic)
    base = Settings(
        MOONWATCH_KAFKA_BOOTSTRAP=kafka,
        MOONWATCH_TOPIC=topic,
        MOONWATCH_CONSUMER_GROUP=f"group-{topic}",
        MOONWATCH_WAREHOUSE_URL=warehouse_url,
    )
    tls = base.model_copy(
        update={"kafka_security": Settings(MOONWATCH_KAFKA_SECURITY=json.dumps(TLS)).kafka_security}
    )
    # The loader cannot even read the topic's partitions over TLS from a plaintext broker.
    with pytest.raises(BrokerError, match=r"cannot read topic '.+'s partitions from the broker"):
        load_quotes(tls)
    assert load_quotes(base)["inserted"] == 3
    stored = warehouse.execute(
        "select count(*) from raw.crypto_quotes where kafka_topic = %s", (topic,)
    ).fetchone()[0]
    assert stored == 3


def test_the_airflow_kafka_connection_carries_the_security_settings(tmp_path) -> None:
    """Docker's Airflow gets its moonwatch_kafka connection from this: the sensor reads the
    whole extra, and the tasks read their security settings back from it."""
    from moonwatch.stack.airflow import AirflowSite, airflow_config

    site = AirflowSite(
        home=tmp_path,
        log_folder=tmp_path / "logs",
        docs_dir=tmp_path / "docs",
        listen_host="127.0.0.1",
        listen_port=8080,
        public_url="http://127.0.0.1:8080",
        execution_api_url="http://127.0.0.1:8080/execution/",
        metadata_db_url="postgresql://airflow:x@127.0.0.1:5432/airflow",
        secret_key="k",
    )
    config = airflow_config(
        site,
        warehouse_url="postgresql://loader:x@127.0.0.1:5432/moonwatch",
        kafka_bootstrap="kafka:9093",
        consumer_group="loaders",
        kafka_security=SASL,
    )
    extra = json.loads(config["AIRFLOW_CONN_MOONWATCH_KAFKA"])["extra"]
    assert extra["bootstrap.servers"] == "kafka:9093" and extra["group.id"] == "loaders"
    assert {k: extra[k] for k in SASL} == SASL
