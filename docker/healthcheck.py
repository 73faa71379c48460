"""Container health check without curl: exit 0 when a URL answers HTTP 200.

    python docker/healthcheck.py URL [COMPONENT ...]

With COMPONENTs the body must be JSON in the shape of Airflow's ``/api/v2/monitor/health``
and each named component must report ``"status": "healthy"``.
"""

from __future__ import annotations

import json
import sys
import urllib.request


def check(url: str, components: list[str], timeout: float = 5.0) -> str | None:
    """None when healthy, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status != 200:
                return f"{url} answered HTTP {response.status}"
            body = response.read()
    except (OSError, ValueError) as e:
        return f"{url}: {e}"
    if not components:
        return None
    try:
        health = json.loads(body)
    except ValueError:
        return f"{url} did not answer JSON"
    if not isinstance(health, dict):
        return f"{url} did not answer a JSON object"
    bad = [c for c in components if (health.get(c) or {}).get("status") != "healthy"]
    return f"not healthy: {', '.join(bad)}" if bad else None


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    problem = check(argv[0], argv[1:])
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
