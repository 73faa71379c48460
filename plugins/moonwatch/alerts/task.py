"""The crypto_alerts task: sync the rules, open and resolve events, send what is unsent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moonwatch.alert_channel import ALERT_CONN_ID
from moonwatch.alerts.delivery import (
    AlertDeliveryError,
    Notification,
    deliver_pending,
    send_via_apprise,
)
from moonwatch.alerts.events import evaluate
from moonwatch.alerts.rules import coin_rule_rows, load_rules, sync_rules
from moonwatch.errors import MoonwatchError

logger = logging.getLogger(__name__)

# The relations an evaluation reads; the first two come from the per-minute dbt build.
QUOTE_MARTS = ("marts.quotes_coins", "marts.latest_quotes")
ALERT_MODELS = ("marts.alert_conditions", "marts.alert_events")


class NothingToAlertOnYet(MoonwatchError):
    """The quote marts are not built yet (a fresh install): nothing to evaluate."""


def run_alerts(
    *,
    warehouse_url: str,
    variable_text: str | None,
    rules_path: Path | None = None,
    successful_runs: Callable[[str], int | None] | None = None,
    send: Callable[[Notification], None] = send_via_apprise,
) -> dict[str, Any]:
    """One evaluation: sync the rules, open and resolve events, send what is unsent.

    Raises :class:`AlertRulesError` for a bad rule (nothing else changes: the previous rules
    stay in force), :class:`NothingToAlertOnYet` before the first quote build, and
    :class:`AlertDeliveryError` after the evaluation when a notification could not be sent.
    """
    import psycopg

    from moonwatch.dbt.checks import existing_relations

    rules = load_rules(path=rules_path, variable_text=variable_text)
    with psycopg.connect(warehouse_url, connect_timeout=10, autocommit=True) as conn:
        existing = existing_relations({*QUOTE_MARTS, *ALERT_MODELS}, warehouse_url=warehouse_url)
        if not set(QUOTE_MARTS) <= existing:
            raise NothingToAlertOnYet(
                "The quote marts are not built yet, so there is nothing to alert on; "
                "crypto_transform builds them on the first quote load."
            )
        synced = sync_rules(conn, rules)
        if not set(ALERT_MODELS) <= existing:
            _build_alert_models(warehouse_url)
        evaluation = evaluate(conn, successful_runs=successful_runs)
        delivery = deliver_pending(conn, send)
    unquoted = sorted(
        f"{rule_id} (coin {coin_id}, {currency})"
        for rule_id, _, coin_id, currency, *_ in coin_rule_rows(rules)
        if (rule_id, coin_id, currency) not in evaluation.judged
    )
    if unquoted:
        logger.warning(
            "no current quote for %s: these rules cannot fire until the coin is tracked "
            "(MOONWATCH_SYMBOLS or the Variable moonwatch_symbols) and quoted in that currency "
            "(MOONWATCH_QUOTE_CURRENCY)",
            ", ".join(unquoted),
        )
    summary_ = {
        "rules": len(rules),
        "rule_rows": synced,
        "active": evaluation.active,
        "opened": len(evaluation.opened),
        "resolved": len(evaluation.resolved),
        "sent": delivery.sent,
        "failed": delivery.failed,
        "no_channel": delivery.no_channel,
        "without_quotes": unquoted,
    }
    logger.info("alerts: %s", summary_)
    if delivery.no_channel:
        logger.warning(
            "alert events are recorded (the dashboard lists them) but not sent: no alert "
            "channel. Create the Airflow connection %r of type apprise (README.md, 'Alerts').",
            ALERT_CONN_ID,
        )
    if delivery.failed:
        raise AlertDeliveryError(
            f"{delivery.failed} alert notification(s) could not be delivered "
            f"({'; '.join(sorted(set(delivery.errors)))}); they stay unsent and the next run "
            "retries them."
        )
    return summary_


def _build_alert_models(warehouse_url: str) -> None:
    """First run after an install or upgrade: create the two alert views (seconds)."""
    import tempfile

    from moonwatch.dbt.runner import run_dbt

    with tempfile.TemporaryDirectory(prefix="moonwatch-dbt-alerts-") as tmp:
        run_dbt(
            ["run", "--select", "alert_conditions", "alert_events"],
            warehouse_url=warehouse_url,
            target_path=Path(tmp) / "target",
            log_path=Path(tmp) / "logs",
            check=True,
        )
