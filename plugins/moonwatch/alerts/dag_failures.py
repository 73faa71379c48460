"""DAG failures as alerts: every task's failure callback opens (once per failing DAG) an event
and sends it through the alert channel; the DAG's next successful run resolves it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.bases.notifier import BaseNotifier

from moonwatch.alerts.delivery import (
    Notification,
    deliver_pending,
    send_via_apprise,
    split_message,
)
from moonwatch.alerts.events import utc_text
from moonwatch.alerts.rules import (
    RULES_INVALID_ID,
    AlertRulesError,
    DagFailureRule,
    load_rules,
    rules_variable_text,
)

logger = logging.getLogger(__name__)


def dag_failure_message(rule: DagFailureRule, context: Mapping[str, Any], airflow_url: str) -> str:
    """Title line, blank line, body: which task of which DAG failed, why, and where the log is."""
    ti = context["ti"]
    dag_id, run_id, task_id = ti.dag_id, ti.run_id, ti.task_id
    error = context.get("exception")
    reason = f"{type(error).__name__}: {error}" if error is not None else "see the task log"
    # The first line, cut short: enough to recognise the failure; the log has the rest.
    reason = (reason.splitlines() or [""])[0][:300]
    return "\n".join(
        [
            f"Moonwatch alert: DAG {dag_id} failed",
            "",
            f"Task {task_id} of DAG {dag_id} failed after {getattr(ti, 'try_number', '?')} "
            f"tries (run {run_id}).",
            f"Error: {reason}",
            f"Rule: {rule.id} (dag_failure)",
            f"Time: {utc_text(datetime.now(UTC))}",
            f"Log: {airflow_url.rstrip('/')}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}",
        ]
    )


def record_dag_failure(
    conn: Any,
    rule: DagFailureRule,
    context: Mapping[str, Any],
    message: str,
    *,
    successful_runs: int | None,
) -> int | None:
    """Open (or count one more failure on) the DAG's failure event; returns the event id when
    this failure opened it, None when an event for that DAG was already open."""
    ti = context["ti"]
    with conn.transaction():
        row = conn.execute(
            "insert into raw.alert_events (rule_id, kind, subject, dag_id, open_message,"
            " successful_runs_at_open, detail) values (%s, 'dag_failure', %s, %s, %s, %s,"
            " jsonb_build_object('title', %s::text, 'run_id', %s::text, 'task_id', %s::text))"
            " on conflict (rule_id, subject) where resolved_at is null"
            " do update set repeat_count = raw.alert_events.repeat_count + 1"
            " returning event_id, (xmax = 0) as inserted",
            (
                rule.id,
                ti.dag_id,
                ti.dag_id,
                message,
                successful_runs,
                message.splitlines()[0],
                ti.run_id,
                ti.task_id,
            ),
        ).fetchone()
    return row[0] if row[1] else None


class DagFailureNotifier(BaseNotifier):
    """``on_failure_callback`` of every task (``moonwatch.dag_defaults``): records the DAG's
    failure as an alert event and sends it through the same channel as every other alert,
    once per failing DAG until it succeeds again.

    When the warehouse that keeps the alert state is itself unreachable (often the very reason
    a DAG failed), the alert is sent anyway, saying it was not de-duplicated: a repeat is
    better than silence. It never raises: a broken channel must not hide the task's own error;
    a recorded but unsent notification is retried by crypto_alerts."""

    template_fields = ()

    def notify(self, context: Mapping[str, Any]) -> None:
        try:
            self._notify(context)
        except Exception:
            logger.exception(
                "could not record or send the DAG-failure alert; crypto_alerts retries unsent "
                "alerts every minute"
            )

    def _notify(self, context: Mapping[str, Any]) -> None:
        import psycopg

        from moonwatch.airflow_glue import warehouse_url_from_connection
        from moonwatch.settings import load_settings

        ti = context["ti"]
        try:
            every_rule = load_rules(variable_text=rules_variable_text())
        except AlertRulesError:
            # Broken rules must not silence failures (crypto_alerts' own failure names them).
            logger.warning("the alert rules do not validate: reporting this failure anyway")
            every_rule = [DagFailureRule(id=RULES_INVALID_ID, kind="dag_failure")]
        rules = [r for r in every_rule if isinstance(r, DagFailureRule) and r.matches(ti.dag_id)]
        if not rules:
            return
        settings = load_settings()
        messages = {r.id: dag_failure_message(r, context, settings.airflow_url) for r in rules}
        try:
            runs = _successful_runs_via(ti)(ti.dag_id)
            url = warehouse_url_from_connection() or settings.require_warehouse_url()
            with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
                opened = [
                    event_id
                    for rule in rules
                    if (
                        event_id := record_dag_failure(
                            conn, rule, context, messages[rule.id], successful_runs=runs
                        )
                    )
                    is not None
                ]
                if opened:
                    deliver_pending(conn, send_via_apprise, event_ids=opened)
        except psycopg.OperationalError:
            logger.warning(
                "the warehouse that keeps alert state is unreachable: sending this DAG-failure "
                "alert without de-duplication"
            )
            title, body = split_message(messages[rules[0].id])
            body += (
                "\n\nSent without de-duplication: the warehouse that records alerts was "
                "unreachable, so this failure is not in marts.alert_events."
            )
            send_via_apprise(Notification(0, "open", title, body))


def _successful_runs_via(ti: Any) -> Callable[[str], int | None]:
    """A DAG's successful-run count through the task's Airflow API client (None outside one)."""

    def count(dag_id: str) -> int | None:
        getter = getattr(ti, "get_dr_count", None)
        if getter is None:
            return None
        return getter(dag_id=dag_id, states=["success"])

    return count
