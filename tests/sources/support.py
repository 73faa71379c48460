"""Helpers for the source tests: fixed time, a marker key, and a replaying HTTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FIXED_NOW = datetime(2025, 5, 7, 12, 34, 45, 250_000, tzinfo=UTC)  # a Wednesday
MARKER_KEY = "MARKER-KEY-5f0c7e1d-do-not-leak"


def fixed_clock() -> datetime:
    return FIXED_NOW


def cmc_body(data: Any = None, error_code: int = 0, message: str | None = None,
             credits: int = 1) -> dict[str, Any]:  # fmt: skip
    """A body in CoinMarketCap's recorded shape."""
    return {
        "status": {
            "timestamp": "2025-05-07T12:34:45.250Z",
            "error_code": error_code,
            "error_message": message,
            "elapsed": 10,
            "credit_count": credits,
            "notice": None,
        },
        **({"data": data} if error_code == 0 else {}),
    }


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """A threaded server on a free loopback port, serving from a daemon thread; and its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _stop(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


@dataclass
class Canned:
    """One reply of the replay server; a ``str`` body is sent raw, as application/json unless
    ``headers`` name another Content-Type."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class ReplayServer:
    """Answers GETs with the canned replies in order (the last one repeats) and records them."""

    def __init__(self, replies: list[Canned]) -> None:
        self.replies = replies
        self.count = 0
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with lock:
                    reply = outer.replies[min(outer.count, len(outer.replies) - 1)]
                    outer.count += 1
                    outer.paths.append(self.path)
                    outer.headers.append(dict(self.headers))
                time.sleep(reply.delay)
                body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                raw = body.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Length", str(len(raw)))
                    if not any(name.lower() == "content-type" for name in reply.headers):
                        self.send_header("Content-Type", "application/json")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the client gave up (timeout tests)

        lock = threading.Lock()
        self.server, self.url = _serve(Handler)

    def close(self) -> None:
        _stop(self.server)


@dataclass
class Sleeps:
    """A stand-in for time.sleep that records the waits instead of sleeping."""

    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class StreamServer:
    """Answers every GET with ``status``, ``headers`` and then the body ``chunks()`` yields,
    written one by one with ``pause`` seconds between them and no Content-Length (the body
    ends when the connection closes). ``sent`` counts the bytes the client took, so a test
    can show a client stopped reading early."""

    def __init__(
        self,
        chunks: Callable[[], Iterator[bytes]],
        headers: dict[str, str],
        pause: float = 0.0,
        status: int = 200,
    ) -> None:
        self.sent = 0
        self.finished = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    for chunk in chunks():
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        outer.sent += len(chunk)
                        time.sleep(pause)
                except OSError:
                    pass  # the client hung up: what these tests want to see
                finally:
                    outer.finished.set()

        self.server, self.url = _serve(Handler)

    def close(self) -> None:
        _stop(self.server)
