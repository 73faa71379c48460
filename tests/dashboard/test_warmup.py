"""The launcher's warm-up of a freshly started dashboard (streamlit_app.warmup), against a
real `streamlit run` of the page over the real test Postgres."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from moonwatch.stack.config import StackConfig
from moonwatch.stack.process import free_port
from streamlit_app.warmup import WarmupError, stream_url, warm
from tests.dashboard import marts_data
from tests.dashboard.test_browser import serve_dashboard, stop


def test_stream_url_is_the_servers_websocket():
    assert stream_url("http://127.0.0.1:18501") == "ws://127.0.0.1:18501/_stcore/stream"
    assert stream_url("https://example.org/moon/") == "wss://example.org/moon/_stcore/stream"
    with pytest.raises(ValueError, match="not a dashboard URL"):
        stream_url("127.0.0.1:18501")


def test_warm_names_a_server_that_does_not_answer():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(WarmupError, match=f"cannot run the dashboard page at {url}"):
        warm(url, timeout=5)


def _connections_to(process: subprocess.Popen, port: int) -> int:
    """The server process's open TCP connections to ``port`` (Postgres): the page's pool
    connects when the page's script first runs there, never before."""
    return sum(
        1
        for c in psutil.Process(process.pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


@pytest.fixture
def fresh_server(pg: StackConfig, loader, tmp_path: Path) -> Iterator[tuple]:
    marts_data.fill_small(loader)
    process, url = serve_dashboard(pg.dashboard_db_url, tmp_path / "streamlit.log")
    try:
        yield process, url
    finally:
        stop(process)
        marts_data.drop_marts(loader)


@pytest.mark.integration
@pytest.mark.slow
def test_warm_runs_the_page_once_in_the_server(fresh_server, pg: StackConfig):
    process, url = fresh_server
    # A server that has only answered its health check has not run the page: nothing of it
    # is imported, connected or cached yet.
    assert _connections_to(process, pg.pg_port) == 0
    assert warm(url) == "FINISHED_SUCCESSFULLY"
    # The run read the marts through the page's own pool, in the server process: the next
    # visitor finds the modules imported, the pool open and the query caches filled.
    assert _connections_to(process, pg.pg_port) >= 1
