"""The simulator's HTTP server: CoinMarketCap and Frankfurter shapes on loopback, stdlib only.

Routes: ``/v1|v2|v3/cryptocurrency/quotes/latest``, ``/v2/cryptocurrency/quotes/historical``,
``/v1/cryptocurrency/listings/latest``, ``/v1/key/info`` (the credits its answers cost, per UTC
month of its clock), ``/frankfurter/latest``, ``/health``; for tests and chaos runs
``POST|GET|DELETE /_sim/faults`` (e.g. ``{"status": 429, "error_code": 1008, "count": 2}``,
``{"status": 500, "count": 1}``, ``{"delay_seconds": 3}``, ``{"status": 200, "body": "<html>"}``),
``POST /_sim/config`` (``{"require_key": true}``) and ``GET /_sim/requests`` (requests seen per
path). The ``/_sim/*`` routes exist only when the server has a control token, and want it in
every request (see ``control``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from moonwatch.sources.simulator import api, control
from moonwatch.sources.simulator.fx_rates import frankfurter_latest
from moonwatch.sources.simulator.market import Market

logger = logging.getLogger(__name__)

KEY_HEADER = "X-CMC_PRO_API_KEY"


@dataclass
class Fault:
    """One injected misbehaviour, used up after ``count`` requests (None: until cleared)."""

    status: int | None = None
    error_code: int | None = None
    error_message: str | None = None
    count: int | None = 1
    delay_seconds: float = 0.0
    retry_after: float | None = None
    body: str | None = None  # a raw body instead of CoinMarketCap's error JSON
    path_prefix: str = "/"


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        market: Market,
        control_token: str | None = None,
        monthly_credits: int | None = None,
    ) -> None:
        super().__init__(address, _Handler)
        self.market = market
        # The plan's monthly credits: None is unmetered (make up: the simulator is free);
        # a number makes it answer 1010 once a month's answers have cost that much.
        self.monthly_credits = monthly_credits
        self.credits_used: Counter[str] = Counter()  # "YYYY-MM" and "YYYY-MM-DD" -> credits
        # None: fault control is off and /_sim/* does not exist.
        self.control_token = control_token or None
        self.require_key = False
        self.faults: list[Fault] = []
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def charge(self, now: datetime, body: Any) -> None:
        """Count what an answer said it cost, against its month and day (the market's clock)."""
        credits = body.get("status", {}).get("credit_count") if isinstance(body, dict) else None
        if isinstance(credits, int) and credits > 0:
            with self.lock:
                self.credits_used[f"{now:%Y-%m}"] += credits
                self.credits_used[f"{now:%Y-%m-%d}"] += credits

    def month_spent(self, now: datetime) -> bool:
        with self.lock:
            used = self.credits_used[f"{now:%Y-%m}"]
        return self.monthly_credits is not None and used >= self.monthly_credits

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if path.startswith(fault.path_prefix) and (fault.count is None or fault.count > 0):
                    if fault.count is not None:
                        fault.count -= 1
                    return fault
        return None

    def start(self) -> SimulatorServer:
        # A short poll interval keeps stop() (and so test teardown) fast.
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name="cmc-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> SimulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        # The request line only: headers (and so any key) are never logged.
        logger.debug("simulator %s - %s", self.address_string(), format % args)

    def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body, allow_nan=False).encode()
        self.send_response(code)
        ctype = "text/html" if isinstance(body, bytes) else "application/json; charset=utf-8"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("X-Moonwatch-Simulated", "true")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def _json_body(self) -> dict[str, Any]:
        length = control.check_json_request(
            self.headers.get("Content-Type"), self.headers.get("Content-Length")
        )
        try:
            value = json.loads(self.rfile.read(length) or b"{}")
        except ValueError as e:
            raise control.ControlError(400, f"the body is not JSON ({e})") from None
        if not isinstance(value, dict):
            raise control.ControlError(400, "the body must be a JSON object")
        return value

    def _control(self, method: str) -> None:
        """One ``/_sim/*`` request: 404 when control is off, else token, then type, then bounds."""
        path = urlsplit(self.path).path.rstrip("/")
        token = self.server.control_token
        if token is None:
            return self._send(404, {"error": "not found"})
        try:
            control.check_token(token, self.headers.get(control.TOKEN_HEADER))
            if method == "POST":
                self._post(path, self._json_body())
            elif method == "DELETE" and path == "/_sim/faults":
                with self.server.lock:
                    self.server.faults.clear()
                self._send(200, {"faults": []})
            elif method == "GET" and path in ("/_sim/faults", "/_sim/requests"):
                self._sim(path)
            else:
                self._send(404, {"error": "not found"})
        except control.ControlError as e:
            # The connection may still hold an unread body: close it rather than misread it.
            self.close_connection = True
            self._send(e.status, {"error": str(e)}, {"Connection": "close"})

    def _post(self, path: str, body: dict[str, Any]) -> None:
        if path == "/_sim/faults":
            fault = Fault(**control.fault_fields(body, {f.name for f in fields(Fault)}))
            with self.server.lock:
                if len(self.server.faults) >= control.MAX_FAULTS:
                    raise control.ControlError(
                        400, f"at most {control.MAX_FAULTS} faults; DELETE /_sim/faults first"
                    )
                self.server.faults.append(fault)
                faults = [asdict(f) for f in self.server.faults]
            return self._send(201, {"faults": faults})
        if path == "/_sim/config":
            self.server.require_key = control.config_fields(body)
            return self._send(200, {"require_key": self.server.require_key})
        self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        if urlsplit(self.path).path.startswith("/_sim/"):
            return self._control("POST")
        self._send(404, {"error": "not found"}, {"Connection": "close"})
        self.close_connection = True

    def do_DELETE(self) -> None:
        if urlsplit(self.path).path.startswith("/_sim/"):
            return self._control("DELETE")
        self._send(404, {"error": "not found"})

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if path.startswith("/_sim/"):
            return self._control("GET")
        with self.server.lock:
            self.server.requests[path] += 1
        now = self.server.market.clock()
        fault = self.server.take_fault(path)
        if fault is not None:
            if fault.delay_seconds:
                time.sleep(fault.delay_seconds)
            if fault.status is not None or fault.error_code is not None:
                return self._fault(fault, now)
        if path == "/health":
            market = self.server.market
            return self._send(200, {"status": "ok", "simulated": True, "seed": market.seed,
                                    "coins": len(market.coins), "notice": api.NOTICE})  # fmt: skip
        if path == "/frankfurter/latest":
            return self._send(*frankfurter_latest(params, self.server.market.seed, now, api.NOTICE))
        if self.server.require_key and not self.headers.get(KEY_HEADER):
            return self._send(*api.error_reply(now, 1002))
        if path == "/v1/key/info":
            with self.server.lock:
                month = self.server.credits_used[f"{now:%Y-%m}"]
                day = self.server.credits_used[f"{now:%Y-%m-%d}"]
            return self._send(*api.key_info(now, month, day, self.server.monthly_credits))
        try:
            reply = self._answer(path, params, now)
        except api.BadRequest as e:
            return self._send(*api.error_reply(now, 400, str(e)))
        if reply is not None:
            if reply[0] == 200 and self.server.month_spent(now):
                return self._send(*api.error_reply(now, 1010))
            self.server.charge(now, reply[1])
            return self._send(*reply)
        self._send(*api.error_reply(now, 404, f"No endpoint at {path}", http=404))

    def _answer(self, path: str, params: dict[str, str], now: datetime) -> api.Reply | None:
        """The API's answer for ``path``, or None when there is no such endpoint."""
        market = self.server.market
        if path == "/v1/cryptocurrency/listings/latest":
            return api.listings_latest(params, market, now)
        if path == "/v2/cryptocurrency/quotes/historical":
            return api.quotes_historical(params, market, now)
        for version in (1, 2, 3):
            if path == f"/v{version}/cryptocurrency/quotes/latest":
                return api.quotes_latest(version, params, market, now)
        return None

    def _fault(self, fault: Fault, now: datetime) -> None:
        code = fault.error_code if fault.error_code is not None else fault.status or 500
        http = fault.status or api.ERRORS.get(code, (500, ""))[0]
        headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        if fault.body is not None:
            return self._send(http, fault.body.encode(), headers)
        _, body = api.error_reply(now, code, fault.error_message, http)
        self._send(http, body, headers)

    def _sim(self, path: str) -> None:
        with self.server.lock:
            if path == "/_sim/faults":
                return self._send(200, {"faults": [asdict(f) for f in self.server.faults]})
            if path == "/_sim/requests":
                return self._send(200, {"requests": dict(self.server.requests)})
        self._send(404, {"error": "not found"})


def make_server(
    host: str = "127.0.0.1",
    port: int = 18600,
    seed: int = 42,
    clock: Callable[[], datetime] | None = None,
    control_token: str | None = None,
    monthly_credits: int | None = None,
) -> SimulatorServer:
    """A bound, not yet serving, simulator; call ``serve_forever()`` or ``start()``.

    ``control_token`` turns on fault control (``/_sim/*``); without it those routes are 404.
    ``monthly_credits`` meters it like a plan (error 1010 once a month's answers cost that).
    """
    market = Market(seed=seed, clock=clock or (lambda: datetime.now(UTC)))
    return SimulatorServer((host, port), market, control_token, monthly_credits)


def serve_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int = 42,
    clock: Callable[[], datetime] | None = None,
    control_token: str | None = None,
    monthly_credits: int | None = None,
) -> SimulatorServer:
    """A simulator serving from a daemon thread (port 0 picks a free port; see ``.url``)."""
    return make_server(host, port, seed, clock, control_token, monthly_credits).start()
