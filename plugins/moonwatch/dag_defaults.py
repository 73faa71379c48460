"""What every Moonwatch DAG shares, so a DAG file states only what is its own.

``@moonwatch_dag(schedule=..., tags=[...])`` is Airflow's ``@dag`` with the house defaults:
a timezone-aware ``start_date``, ``catchup=False``, one run at a time, the ``moonwatch`` tag
first, ``default_args`` from :func:`moonwatch_default_args` (owner, retries, the failure
alert), and as ``doc_md`` the DAG function's docstring, else the DAG file's module
docstring. A DAG overrides any of them by passing it; anything else ``@dag`` accepts
(``dagrun_timeout``, ...) passes through.

Every task's final failure (after its retries) goes to :class:`moonwatch.alerts.DagFailureNotifier`,
so a failing DAG is announced through the same alert channel as price alerts (README.md,
"Alerts"), once per DAG until it succeeds again. Each DAG keeps its own retry policy.

Airflow only parses a file whose text mentions both "airflow" and "dag": a DAG file that
imports only this decorator still imports ``task`` or an operator from ``airflow``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from moonwatch.alerts import DagFailureNotifier

OWNER = "moonwatch"
TAG = "moonwatch"
# With catchup off, any past date works; a fixed one keeps DAG versions stable.
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)


def moonwatch_default_args(
    *, retries: int = 2, retry_delay: timedelta = timedelta(seconds=30), **more: Any
) -> dict[str, Any]:
    """``default_args`` for a Moonwatch DAG (``@moonwatch_dag`` sets them itself)."""
    return {
        "owner": OWNER,
        "retries": retries,
        "retry_delay": retry_delay,
        "on_failure_callback": [DagFailureNotifier()],
        **more,
    }


def moonwatch_dag(
    *,
    schedule: Any,
    tags: Iterable[str] = (),
    retries: int = 2,
    retry_delay: timedelta = timedelta(seconds=30),
    start_date: datetime = START_DATE,
    max_active_runs: int = 1,
    doc_md: str | None = None,
    **dag_kwargs: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Airflow's ``@dag`` with the Moonwatch defaults; ``tags`` follow the ``moonwatch`` tag."""
    from airflow.sdk import dag

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        module = sys.modules.get(fn.__module__)
        return dag(
            schedule=schedule,
            start_date=start_date,
            catchup=False,
            max_active_runs=max_active_runs,
            default_args=moonwatch_default_args(retries=retries, retry_delay=retry_delay),
            tags=[TAG, *tags],
            doc_md=doc_md or fn.__doc__ or getattr(module, "__doc__", None),
            **dag_kwargs,
        )(fn)

    return decorate
