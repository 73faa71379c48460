"""Where alerts go: the Airflow connection ``moonwatch_alerts`` (type apprise).

Create it like any Airflow connection (UI, CLI, a secrets backend, or an
``AIRFLOW_CONN_MOONWATCH_ALERTS`` variable), or, with the local stack, export
``MOONWATCH_ALERT_URLS`` (Apprise URLs separated by spaces) before ``make up``: the launcher
turns it into that connection for Airflow's processes only (:func:`connection_env`). The URLs
hold credentials (an SMTP password, a Slack token), so they are never logged or put in a
message. Pure and dependency-free: the launcher imports it.
"""

from __future__ import annotations

import json

ALERT_CONN_ID = "moonwatch_alerts"
ALERT_URLS_ENV = "MOONWATCH_ALERT_URLS"


def connection_env(urls: str | None) -> dict[str, str]:
    """``{"AIRFLOW_CONN_MOONWATCH_ALERTS": <apprise connection JSON>}`` for the given Apprise
    URLs, or ``{}`` when there are none. Split on whitespace only: an Apprise URL may hold
    commas (``mailto://...?to=a@example.com,b@example.com``)."""
    paths = (urls or "").split()
    if not paths:
        return {}
    connection = {"conn_type": "apprise", "extra": {"config": [{"path": p} for p in paths]}}
    return {f"AIRFLOW_CONN_{ALERT_CONN_ID.upper()}": json.dumps(connection)}
