"""
### crypto_maintenance: keep the stack's own growth to `MOONWATCH_RETENTION_DAYS`

Every hour (at minute 25, away from the top-of-hour `crypto_reconcile`) three independent
tasks delete what is older than the retention (`MOONWATCH_RETENTION_DAYS`, default 7 days):

- `clean_airflow_metadata`: Airflow's own `airflow db clean --skip-archive` on the tables that
  grow (DAG runs, task instances and their history, XComs, the audit log, jobs, asset events,
  ...). Airflow keeps each DAG's latest scheduled run. The `dag` and `trigger` tables are left
  alone: they hold one row per DAG or waiting task, not history.
- `clean_task_logs`: the `*.log` files under Airflow's `[logging] base_log_folder` and the
  dag-processor's log folder last written before the retention, and the folders that leaves
  empty, like the official Helm chart's log groomer.
- `clean_rejected_rows`: rows of `raw.crypto_quotes_rejected`, `raw.crypto_listings_rejected`
  and `raw.fx_rates_rejected` loaded before the retention, 5,000 a transaction. The quotes,
  listings and rates themselves are never deleted.

Hourly, so what is kept never exceeds the retention by more than an hour, and each run deletes
an hour's worth. A bad `MOONWATCH_RETENTION_DAYS` (not a whole number, or below 1) fails the
run at once with a message naming it.

What a deployment needs:
- `MOONWATCH_AIRFLOW_DB_URL` (the metadata database's SQLAlchemy URL) in the environment of the
  worker that runs this DAG: Airflow 3 hides `[database] sql_alchemy_conn` from tasks, so
  `airflow db clean` is given this URL. `make up` and `docker-compose.yml` set it.
- Task logs are files on the host that wrote them. With several workers on separate disks,
  each host needs its own log cleanup (this DAG cleans only the host its task runs on): run
  the Helm chart's log groomer, or route `clean_task_logs` to one queue per host. A shared
  logs volume (as in `docker-compose.yml`) needs only this DAG. With remote logging, the
  remote copies follow the remote store's own retention.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import task

from moonwatch.dag_defaults import moonwatch_dag


@moonwatch_dag(schedule="25 * * * *", tags=["maintenance"], retry_delay=timedelta(minutes=2))
def crypto_maintenance():
    @task(execution_timeout=timedelta(minutes=40))
    def clean_airflow_metadata() -> dict:
        from moonwatch import retention
        from moonwatch.airflow_glue import fail_without_retry_on_permanent_errors, task_settings

        with fail_without_retry_on_permanent_errors():
            settings = task_settings()
            url = settings.airflow_db_url.get_secret_value() if settings.airflow_db_url else None
            return retention.clean_metadata_db(
                retention.cutoff(settings.retention_days), retention.require_metadata_db_url(url)
            )

    @task(execution_timeout=timedelta(minutes=20))
    def clean_task_logs() -> dict:
        from dataclasses import asdict

        from moonwatch import retention
        from moonwatch.airflow_glue import fail_without_retry_on_permanent_errors, task_settings

        with fail_without_retry_on_permanent_errors():
            before = retention.cutoff(task_settings().retention_days)
            return asdict(retention.clean_task_logs(before))

    @task(execution_timeout=timedelta(minutes=20))
    def clean_rejected_rows() -> dict:
        from moonwatch import retention
        from moonwatch.airflow_glue import fail_without_retry_on_permanent_errors, task_settings

        with fail_without_retry_on_permanent_errors():
            settings = task_settings()
            return retention.delete_rejected_before(
                settings.require_warehouse_url(), retention.cutoff(settings.retention_days)
            )

    clean_airflow_metadata()
    clean_task_logs()
    clean_rejected_rows()


crypto_maintenance()
