"""
### Reconciliation: does the dashboard hold what the source says?

Hourly, asks the source (CoinMarketCap, or the offline simulator) once more for the tracked
coins (inside the monthly credit budget) and stores what it said in `raw.reconciliation`. Then
waits (at most 5 minutes, freeing its worker slot between checks) until the pipeline has carried
the same coin-minute into `marts.quotes_coins`, and compares price, market cap and volume.
Each sample ends `matched`, `mismatched` (with the fields that differ), `superseded` (the
producer never saw that version) or `not_loaded`. A mismatch or a lost quote fails the run, in
red; the counts show in the dashboard's pipeline health. Before the first dbt build (a fresh
install) there is nothing to compare: the run is skipped with that reason, not failed.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import task

from moonwatch.dag_defaults import moonwatch_dag


@moonwatch_dag(schedule="@hourly", tags=["quality", "quotes"])
def crypto_reconcile():
    @task(execution_timeout=timedelta(minutes=2))
    def sample_source(**context) -> dict:
        from airflow.sdk import Variable
        from airflow.sdk.exceptions import AirflowSkipException

        from moonwatch.airflow_glue import task_settings
        from moonwatch.errors import CreditBudgetExceededError
        from moonwatch.reconcile import sample_task

        settings = task_settings()
        symbols = Variable.get("moonwatch_symbols", default=settings.symbols)
        try:
            return sample_task(settings, context["run_id"], symbols)
        except CreditBudgetExceededError as e:
            raise AirflowSkipException(f"no reconciliation this hour: {e}") from e

    @task.sensor(poke_interval=20, timeout=300, mode="reschedule", soft_fail=True)
    def wait_for_marts(**context):
        from airflow.sdk.bases.sensor import PokeReturnValue

        from moonwatch.airflow_glue import task_settings
        from moonwatch.reconcile import poll_task

        done, counts = poll_task(task_settings(), context["run_id"])
        return PokeReturnValue(is_done=done, xcom_value=counts)

    # Runs after a timed-out (skipped) wait too: whatever is still missing is reported lost.
    @task(trigger_rule="none_failed")
    def compare_with_marts(**context) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from moonwatch.airflow_glue import fail_without_retry_on_permanent_errors, task_settings
        from moonwatch.reconcile import MartsNotBuiltYetError, report_task

        try:
            with fail_without_retry_on_permanent_errors():
                return report_task(task_settings(), context["run_id"])
        except MartsNotBuiltYetError as e:  # a fresh install: nothing to compare is no failure
            raise AirflowSkipException(str(e)) from e

    sample_source() >> wait_for_marts() >> compare_with_marts()


crypto_reconcile()
