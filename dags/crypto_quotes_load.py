"""
### Quotes into Postgres: woken by Kafka, not by a clock

A continuous DAG (one run at a time). `wait_for_quotes` waits in the triggerer for a message on
the quotes topic, from its start to its end, so waiting costs no worker run
(`moonwatch.quotes_sensor`). It uses the loader's own consumer group with offset commits OFF,
so it only peeks and never steals a message. `load_quotes` then consumes in batches until
the topic is idle, validates each message (times from the future or before 2009, markup in
names and oversized values are refused), upserts the good ones into `raw.crypto_quotes` on
`(source, coin_id, quote_currency, last_updated)`, puts the bad ones in
`raw.crypto_quotes_rejected` with a reason, commits Postgres, and only then commits the Kafka
offsets. A load that adds rows updates the `raw.crypto_quotes` Asset, which
wakes dbt.

`MOONWATCH_LOADERS` load tasks run at once (mapped, `loader` 0..N-1). One (the default) reads
every partition itself and commits to the group's offsets without joining it, which saves the
group join; if it dies mid-batch, its retry re-reads what it had not committed. Several are
each a member of the consumer group with a share of the topic's `MOONWATCH_TOPIC_PARTITIONS`
partitions (on a distributed executor, on different workers); loader `i` waits `i` group
session timeouts longer before it leaves, so the group settles one departure at a time, and
one that dies leaves its partitions to the others. Either way only uncommitted offsets are
left behind, and the natural-key upsert keeps every re-read quote single.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import task

from moonwatch.airflow_glue import KAFKA_CONN_ID
from moonwatch.assets import RAW_QUOTES
from moonwatch.dag_defaults import moonwatch_dag
from moonwatch.quotes_sensor import AwaitQuotesSensor
from moonwatch.settings import load_settings


@moonwatch_dag(
    schedule="@continuous",
    tags=["quotes", "kafka", "postgres"],
    retries=3,
    retry_delay=timedelta(seconds=15),
)
def crypto_quotes_load():
    settings = load_settings()
    wait_for_quotes = AwaitQuotesSensor(
        task_id="wait_for_quotes",
        kafka_config_id=KAFKA_CONN_ID,
        topics=[settings.topic],
        apply_function="moonwatch.kafka.describe_waiting_message",
        poll_timeout=1,
        poll_interval=1,
    )

    # Ahead of dbt's tasks in the executor's queue: fresh quotes must not wait behind a build.
    @task(
        outlets=[RAW_QUOTES],
        execution_timeout=timedelta(minutes=15),
        priority_weight=100,
        weight_rule="absolute",
    )
    def load_quotes(loader: int) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from moonwatch import pipeline
        from moonwatch.airflow_glue import fail_without_retry_on_permanent_errors, task_settings

        with fail_without_retry_on_permanent_errors():
            counts = pipeline.load_quotes(task_settings(), loader)
        if counts["inserted"] == 0:
            # Skipped tasks emit no Asset event: dbt is not woken for nothing.
            raise AirflowSkipException(f"loader {loader}: no new quotes ({counts})")
        return counts

    wait_for_quotes >> load_quotes.expand(loader=list(range(settings.loaders)))


crypto_quotes_load()
