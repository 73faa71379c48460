"""Offline CoinMarketCap + Frankfurter simulator: deterministic data for a seed and a clock.

Run it with ``python -m moonwatch.sources.simulator --host 127.0.0.1 --port 18600 --seed 42``.
"""

from moonwatch.sources.simulator.market import Market
from moonwatch.sources.simulator.server import (
    Fault,
    SimulatorServer,
    make_server,
    serve_in_thread,
)

__all__ = ["Fault", "Market", "SimulatorServer", "make_server", "serve_in_thread"]
