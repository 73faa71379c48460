"""Real delivery targets on loopback: an SMTP server (aiosmtpd) and a webhook receiver
(http.server), wired into the Airflow connection ``moonwatch_alerts`` the way a user would."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest

from moonwatch.stack.process import free_port
from tests.dbt.conftest import dbt, dbt_workdir, insert_quote  # noqa: F401


@dataclass
class Inbox:
    """What a receiver got, in order. Apprise returns only after the server answered, so a
    test reads it right after the call, without waiting."""

    items: list[Any] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, item: Any) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def clear(self) -> None:
        with self._changed:
            self.items.clear()


class _Handler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        self.inbox.add(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "subject": str(message["subject"]),
                "body": body.get_content() if body is not None else "",
            }
        )
        return "250 OK"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd), collecting every message it accepts."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(_Handler(inbox), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def webhook_server() -> Iterator[tuple[int, Inbox]]:
    """A real HTTP webhook receiver on 127.0.0.1, collecting each POSTed JSON body."""
    inbox = Inbox()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            inbox.add({"path": self.path, "json": json.loads(self.rfile.read(length) or b"{}")})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], inbox
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def alert_channel(
    smtp_server: tuple[int, Inbox],
    webhook_server: tuple[int, Inbox],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Inbox, Inbox]:
    """The Airflow connection ``moonwatch_alerts`` (type apprise) pointing at both servers,
    given as an environment variable; the inboxes start empty."""
    smtp_port, mails = smtp_server
    web_port, hooks = webhook_server
    mails.clear()
    hooks.clear()
    config = [
        {
            "path": f"mailto://127.0.0.1:{smtp_port}?mode=insecure&from=moonwatch@example.com"
            "&to=trader@example.com"
        },
        {"path": f"json://127.0.0.1:{web_port}/moonwatch-alerts"},
    ]
    monkeypatch.setenv(
        "AIRFLOW_CONN_MOONWATCH_ALERTS",
        json.dumps({"conn_type": "apprise", "extra": {"config": config}}),
    )
    return mails, hooks


@pytest.fixture
def alert_db(warehouse: psycopg.Connection) -> psycopg.Connection:
    """The warehouse (autocommit) with no alert rules or events left from another test."""
    warehouse.execute("truncate raw.alert_events, raw.alert_rules")
    return warehouse
