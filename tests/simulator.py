"""A session-wide offline simulator on loopback, for tests outside tests/sources, and the way
every test talks to a simulator's fault control (``/_sim/*``, token required)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from moonwatch.sources.simulator import SimulatorServer, serve_in_thread
from moonwatch.sources.simulator.control import TOKEN_HEADER

# One random token per test session: fault control is on for the tests' simulators only.
SIM_TOKEN = secrets.token_urlsafe(24)


def sim_control(
    url: str, method: str, path: str, body: dict[str, Any] | None = None, token: str = SIM_TOKEN
) -> requests.Response:
    """``method path`` on the simulator at ``url`` with the control token (JSON body if any)."""
    return requests.request(
        method, url + path, json=body, headers={TOKEN_HEADER: token}, timeout=10
    )


@pytest.fixture(scope="session")
def market_simulator() -> Iterator[SimulatorServer]:
    server = serve_in_thread(seed=7, control_token=SIM_TOKEN)
    yield server
    server.stop()


@pytest.fixture
def simulator_env(
    market_simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> SimulatorServer:
    """Point the settings (CMC_BASE_URL, MOONWATCH_FX_BASE_URL) at the simulator, keyless."""
    with market_simulator.lock:
        market_simulator.faults.clear()
    monkeypatch.delenv("CMC_API_KEY", raising=False)
    monkeypatch.setenv("CMC_BASE_URL", market_simulator.url)
    monkeypatch.setenv("MOONWATCH_FX_BASE_URL", f"{market_simulator.url}/frankfurter")
    return market_simulator
