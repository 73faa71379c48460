"""The default_args every Moonwatch DAG shares: owner, retries, and the failure alert.

Every task's final failure (after its retries) goes to :class:`moonwatch.alerts.DagFailureNotifier`,
so a failing DAG is announced through the same alert channel as price alerts (README.md,
"Alerts"), once per DAG until it succeeds again. Each DAG keeps its own retry policy.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from moonwatch.alerts import DagFailureNotifier

OWNER = "moonwatch"


def moonwatch_default_args(
    *, retries: int = 2, retry_delay: timedelta = timedelta(seconds=30), **more: Any
) -> dict[str, Any]:
    """``default_args`` for a Moonwatch DAG: ``DEFAULT_ARGS = moonwatch_default_args(...)``."""
    return {
        "owner": OWNER,
        "retries": retries,
        "retry_delay": retry_delay,
        "on_failure_callback": [DagFailureNotifier()],
        **more,
    }
