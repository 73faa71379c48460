"""
### crypto_alerts: alert rules → events → one notification each, and one when resolved

Every minute: reads the alert rules (`dbt_project/alerts.yml`, overridden and extended by the
Airflow Variable `moonwatch_alert_rules`), writes the coin rules to `raw.alert_rules`, reads
`marts.alert_conditions` (a dbt view over the quote marts: does each rule hold now?), opens an
event for each condition that started and resolves each that ended (`raw.alert_events`), and
sends what is not sent yet through the Airflow connection `moonwatch_alerts` (Apprise: email,
Slack, Telegram, Discord, webhooks). A condition that holds for an hour is one notification,
then one "resolved". Failed DAGs come through the same channel from every task's failure
callback; this DAG resolves them once the DAG succeeds again.

On a clock, not on the marts Asset: a coin going stale is exactly when no new marts arrive.
A bad rule fails the run with a message naming it; the previous rules stay in force. Without
the connection, events are still recorded and the dashboard lists them.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import task

from moonwatch.dag_defaults import moonwatch_dag


@moonwatch_dag(schedule="* * * * *", tags=["alerts"], retry_delay=timedelta(seconds=10))
def crypto_alerts():
    @task(execution_timeout=timedelta(minutes=2))
    def evaluate_and_notify(**context) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from moonwatch.airflow_glue import fail_without_retry_on_permanent_errors, task_settings
        from moonwatch.alerts import NothingToAlertOnYet, rules_variable_text, run_alerts

        ti = context["ti"]
        with fail_without_retry_on_permanent_errors():
            try:
                return run_alerts(
                    warehouse_url=task_settings().require_warehouse_url(),
                    variable_text=rules_variable_text(),
                    successful_runs=lambda dag_id: ti.get_dr_count(
                        dag_id=dag_id, states=["success"]
                    ),
                )
            except NothingToAlertOnYet as e:
                raise AirflowSkipException(str(e)) from e

    evaluate_and_notify()


crypto_alerts()
