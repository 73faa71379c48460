"""The alert channel: MOONWATCH_ALERT_URLS becomes the Airflow connection moonwatch_alerts for
Airflow's processes only; the URLs (credentials) reach no other service."""

from __future__ import annotations

import dataclasses
import json

from moonwatch.alert_channel import connection_env
from moonwatch.stack import environment
from moonwatch.stack.airflow import airflow_env
from moonwatch.stack.config import StackConfig

URLS = (
    "mailtos://alerts:Sm7p-Pa55word@smtp.example.com?to=a@example.com,b@example.com "
    "slack://T000/B000/XoXb-Secret-Token-1"
)


def test_channel_urls_become_one_apprise_connection_split_on_spaces_only() -> None:
    assert connection_env(None) == {} and connection_env("  ") == {}
    [(name, value)] = connection_env(URLS).items()
    assert name == "AIRFLOW_CONN_MOONWATCH_ALERTS"
    connection = json.loads(value)
    assert connection["conn_type"] == "apprise"
    assert [c["path"] for c in connection["extra"]["config"]] == URLS.split()


def test_channel_reaches_airflow_and_no_other_service(stack: StackConfig) -> None:
    config = dataclasses.replace(stack, env={**stack.env, "MOONWATCH_ALERT_URLS": URLS})
    assert "AIRFLOW_CONN_MOONWATCH_ALERTS" not in airflow_env(stack)
    assert "Sm7p-Pa55word" in airflow_env(config)["AIRFLOW_CONN_MOONWATCH_ALERTS"]
    for service_env in (
        environment.dashboard_env(config),
        environment.simulator_env(config),
        environment.public_settings(config),
    ):
        text = json.dumps(service_env)
        assert "Sm7p-Pa55word" not in text and "Secret-Token" not in text
