"""Alerts: rules without code, events computed from the marts, each sent once, then resolved.

- **Rules** live in ``dbt_project/alerts.yml`` and, with the same shape as JSON (or YAML), in
  the Airflow Variable ``moonwatch_alert_rules``; a Variable rule with a file rule's id replaces
  it, a new id adds one (:func:`load_rules`). Kinds: ``price_cross`` (price above/below a
  level), ``price_move`` (at least X % within N minutes), ``stale`` (newest quote older than N
  minutes) and ``dag_failure``. Coins are CoinMarketCap ids; the currency is explicit.
- **Conditions** come from dbt: :func:`sync_rules` writes the coin rules to ``raw.alert_rules``
  and the view ``marts.alert_conditions`` (``dbt_project/models/marts/alert_conditions.sql``,
  unit-tested like every model) says, per rule, source, coin and currency, whether the
  condition holds now.
- **Events** (``raw.alert_events``): :func:`evaluate` opens an event when a condition starts
  (one open event per rule and subject, enforced by a unique index, so a condition holding for
  an hour is one event) and resolves it when the condition ends. A DAG failure opens an event
  from the failing task's ``on_failure_callback`` (:class:`DagFailureNotifier`, in every DAG's
  default args) and resolves when that DAG completes a successful run again.
- **Delivery** (:func:`deliver_pending`) sends each event's notification once, through
  Airflow's Apprise notifier and the Airflow connection ``moonwatch_alerts`` (email, Slack,
  Telegram, Discord, webhooks...). A notification is marked sent only after Apprise reports
  success, so a failed one is retried by the next run; destination URLs stay in the connection
  and never reach a log or a message.

The package, one module a part: ``rules``, ``events``, ``delivery``, ``dag_failures`` and
``task`` (the crypto_alerts task body, :func:`run_alerts`). Its public names are here too.
"""

from moonwatch.alerts.dag_failures import (
    DagFailureNotifier,
    dag_failure_message,
    record_dag_failure,
)
from moonwatch.alerts.delivery import (
    SEND_WINDOW,
    AlertDeliveryError,
    Delivery,
    NoAlertChannelError,
    Notification,
    deliver_pending,
    pending_notifications,
    send_via_apprise,
)
from moonwatch.alerts.events import Condition, Evaluation, evaluate, read_conditions
from moonwatch.alerts.rules import (
    KINDS,
    RULES_FILE_NAME,
    RULES_INVALID_ID,
    RULES_VARIABLE,
    AlertRulesError,
    DagFailureRule,
    PriceCrossRule,
    PriceMoveRule,
    Rule,
    StaleRule,
    coin_rule_rows,
    load_rules,
    merge_rules,
    parse_rules,
    read_rules_file,
    read_rules_variable,
    rules_file,
    rules_variable_text,
    sync_rules,
)
from moonwatch.alerts.task import ALERT_MODELS, QUOTE_MARTS, NothingToAlertOnYet, run_alerts

__all__ = [
    "ALERT_MODELS",
    "KINDS",
    "QUOTE_MARTS",
    "RULES_FILE_NAME",
    "RULES_INVALID_ID",
    "RULES_VARIABLE",
    "SEND_WINDOW",
    "AlertDeliveryError",
    "AlertRulesError",
    "Condition",
    "DagFailureNotifier",
    "DagFailureRule",
    "Delivery",
    "Evaluation",
    "NoAlertChannelError",
    "NothingToAlertOnYet",
    "Notification",
    "PriceCrossRule",
    "PriceMoveRule",
    "Rule",
    "StaleRule",
    "coin_rule_rows",
    "dag_failure_message",
    "deliver_pending",
    "evaluate",
    "load_rules",
    "merge_rules",
    "parse_rules",
    "pending_notifications",
    "read_conditions",
    "read_rules_file",
    "read_rules_variable",
    "record_dag_failure",
    "rules_file",
    "rules_variable_text",
    "run_alerts",
    "send_via_apprise",
    "sync_rules",
]
