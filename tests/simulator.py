"""A session-wide offline simulator on loopback, for tests outside tests/sources."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from moonwatch.sources.simulator import SimulatorServer, serve_in_thread


@pytest.fixture(scope="session")
def market_simulator() -> Iterator[SimulatorServer]:
    server = serve_in_thread(seed=7)
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
