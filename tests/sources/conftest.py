"""Fixtures for the source tests: the simulator on loopback and a replaying HTTP server.

Both are real HTTP servers on 127.0.0.1 (port 0), so the clients run their real request code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from moonwatch.sources.cmc import CoinMarketCapClient
from moonwatch.sources.simulator import SimulatorServer, serve_in_thread
from tests.simulator import SIM_TOKEN

from .support import MARKER_KEY, Canned, ReplayServer, Sleeps, fixed_clock


@pytest.fixture
def replay() -> Iterator[Callable[..., ReplayServer]]:
    """Factory: ``replay(Canned(...), Canned(...))`` starts a replay server."""
    servers: list[ReplayServer] = []

    def start(*replies: Canned) -> ReplayServer:
        server = ReplayServer(list(replies))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def simulator_session() -> Iterator[SimulatorServer]:
    server = serve_in_thread(seed=42, clock=fixed_clock, control_token=SIM_TOKEN)
    yield server
    server.stop()


@pytest.fixture
def simulator(simulator_session: SimulatorServer) -> SimulatorServer:
    """The session's simulator at FIXED_NOW, with faults, counters and key rule reset."""
    with simulator_session.lock:
        simulator_session.faults.clear()
        simulator_session.requests.clear()
        simulator_session.require_key = False
    return simulator_session


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(sleeps: Sleeps) -> Iterator[Callable[..., CoinMarketCapClient]]:
    """Factory for clients with the marker key, a fixed clock and recorded (not real) sleeps."""
    clients: list[CoinMarketCapClient] = []

    def make(base_url: str, key: str | None = MARKER_KEY, **kwargs: Any) -> CoinMarketCapClient:
        options = {"timeout": 2.0, "max_attempts": 3, "sleep": sleeps, "clock": fixed_clock}
        client = CoinMarketCapClient(
            base_url, SecretStr(key) if key else None, **(options | kwargs)
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
