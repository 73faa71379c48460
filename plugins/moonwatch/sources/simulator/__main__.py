"""``python -m moonwatch.sources.simulator --host 127.0.0.1 --port 18600 --seed 42``.

Fault control (``/_sim/*``) is on only when ``MOONWATCH_SIM_CONTROL_TOKEN`` is set in the
environment (never on the command line, where every local user could read it).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from moonwatch.sources.simulator.control import TOKEN_ENV, TOKEN_HEADER
from moonwatch.sources.simulator.server import make_server

logger = logging.getLogger("moonwatch.sources.simulator")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Moonwatch offline CoinMarketCap simulator")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (loopback)")
    parser.add_argument("--port", type=int, help="default: MOONWATCH_SIM_PORT's default")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.port is None:
        # Only when run by hand: the stack passes --port, and this process, which lives as long
        # as the stack, then never holds pydantic (~10 MiB), which the settings bring.
        from moonwatch.settings import DEFAULT_SIM_PORT

        args.port = DEFAULT_SIM_PORT
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s")
    token = os.environ.get(TOKEN_ENV, "").strip() or None
    try:
        server = make_server(args.host, args.port, args.seed, control_token=token)
    except OSError as e:
        logger.error(
            "cannot bind %s:%d (%s); is another simulator running?", args.host, args.port, e
        )
        return 1

    def stop(*_: object) -> None:
        # shutdown() blocks until serve_forever returns, so not from the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info(
        "Moonwatch simulator (simulated data, seed %d) serving %s; CMC_BASE_URL=%s, "
        "MOONWATCH_FX_BASE_URL=%s/frankfurter",
        args.seed,
        server.url,
        server.url,
        server.url,
    )
    if token:
        logger.info("fault control is on: /_sim/* answers requests carrying %s", TOKEN_HEADER)
    else:
        logger.info("fault control is off (%s unset): /_sim/* answers 404", TOKEN_ENV)
    server.serve_forever()
    server.server_close()
    logger.info("simulator stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
