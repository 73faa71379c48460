"""
### Fiat reference rates: daily, into Postgres

Reads the day's reference rates (units per USD for EUR, SEK, NOK, DKK, GBP and more) from a
keyless public source in the Frankfurter/ECB shape (`MOONWATCH_FX_BASE_URL`; the offline
simulator serves the same shape) and upserts them into `raw.fx_rates`, keyed by source, date and
currency. A rate that is implausible (date, code, size) goes to `raw.fx_rates_rejected` with the
reason instead. Updates the `raw.fx_rates` Asset.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import task

from moonwatch.assets import RAW_FX_RATES
from moonwatch.dag_defaults import moonwatch_dag


@moonwatch_dag(
    schedule="@daily", tags=["fx", "postgres"], retries=3, retry_delay=timedelta(minutes=5)
)
def crypto_fx_load():
    @task(outlets=[RAW_FX_RATES], execution_timeout=timedelta(minutes=5))
    def load_fx_rates() -> dict:
        from moonwatch.airflow_glue import fail_without_retry_on_permanent_errors, task_settings
        from moonwatch.pipeline import load_fx

        with fail_without_retry_on_permanent_errors():
            return load_fx(task_settings())

    load_fx_rates()


crypto_fx_load()
