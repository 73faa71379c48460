"""`up` and `status` judge Airflow by its api-server's health endpoint: a busy server is not a
dead one, and a line that says NOT healthy says which component and since when.

A real HTTP server on loopback stands in for the api-server (its JSON is Airflow 3's
`/api/v2/monitor/health` shape), so the answers can be slow or unhealthy on demand.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from moonwatch.stack import airflow, cli
from moonwatch.stack.config import StackConfig

HEALTHY = {
    "metadatabase": {"status": "healthy"},
    "scheduler": {"status": "healthy", "latest_scheduler_heartbeat": "2026-12-02T02:00:00+00:00"},
    "triggerer": {"status": "healthy", "latest_triggerer_heartbeat": "2026-12-02T02:00:00+00:00"},
    "dag_processor": {
        "status": "healthy",
        "latest_dag_processor_heartbeat": "2026-12-02T02:00:00+00:00",
    },
}


@contextmanager
def api_server(body: dict, delay: float = 0.0) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay)
            payload = json.dumps(body).encode()
            self.send_response(200 if self.path == "/api/v2/monitor/health" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_busy_api_server_that_answers_in_4_s_is_healthy() -> None:
    # Measured right after `up`: 3.5 s for one health answer while every DAG's first tasks
    # started; a 3 s limit made `status` call a working Airflow NOT healthy.
    with api_server(HEALTHY, delay=4.0) as url:
        assert airflow.airflow_problems(url) == []
        assert airflow.airflow_healthy(url)


def test_status_names_the_unhealthy_component_and_its_last_heartbeat(tmp_path, capsys) -> None:
    stale = dict(HEALTHY)
    stale["scheduler"] = {
        "status": "unhealthy",
        "latest_scheduler_heartbeat": "2026-12-02T01:58:07+00:00",
    }
    stale["triggerer"] = {"status": None, "latest_triggerer_heartbeat": None}
    with api_server(stale) as url:
        config = StackConfig.from_env(
            {"MOONWATCH_HOME": str(tmp_path), "MOONWATCH_AIRFLOW_URL": url}
        )
        assert not cli.status(config, only=("airflow",))
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("airflow"))
    assert "NOT healthy" in line
    assert "scheduler unhealthy (last heartbeat 2026-12-02T01:58:07+00:00)" in line
    assert "triggerer not running (no heartbeat yet)" in line
    assert "dag_processor" not in line and "metadatabase" not in line


def test_status_says_when_the_api_server_does_not_answer(tmp_path, capsys) -> None:
    with api_server(HEALTHY) as url:
        pass  # closed: nothing listens on its port any more
    config = StackConfig.from_env({"MOONWATCH_HOME": str(tmp_path), "MOONWATCH_AIRFLOW_URL": url})
    assert not cli.status(config, only=("airflow",))
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("airflow"))
    assert f"the api-server's health check at {url} failed (ConnectionError)" in line
