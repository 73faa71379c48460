"""The history DAG: its shape, its scheduled runs skip, a real `dag.test()` run fetches its
day into Kafka, and the launcher's real `airflow backfill create` (what `make up` runs on a
fresh warehouse) cuts the last 30 days into one run per day. The backfill runs themselves are
executed by the scheduler, which these tests do not start: the task body they run is the one
`dag.test()` runs here."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from moonwatch.errors import StackError
from moonwatch.stack.history import backfill_argv, has_history, history_days, request_history
from moonwatch.stack.history import main as history_main

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_ID = "crypto_quotes_backfill"


@pytest.fixture(scope="module")
def backfill_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR / f"{DAG_ID}.py"))
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def test_backfill_dag_can_be_backfilled_and_yields_to_live_quotes(backfill_dag) -> None:
    from airflow.sdk import CronDataIntervalTimetable

    # Whole-day data intervals (Airflow 3's cron trigger timetables have empty ones).
    assert isinstance(backfill_dag.timetable, CronDataIntervalTimetable)
    assert not backfill_dag.catchup and "history" in backfill_dag.tags
    assert backfill_dag.start_date <= datetime.now(UTC) - timedelta(days=365)
    task = backfill_dag.get_task("backfill_quotes_to_kafka")
    assert task.retries >= 2 and task.owner == "moonwatch"
    assert task.priority_weight == 1 and task.weight_rule == "absolute"
    assert "airflow backfill create --dag-id crypto_quotes_backfill" in backfill_dag.doc_md


def test_backfill_dag_scheduled_runs_skip_with_the_reason(backfill_dag) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    body = backfill_dag.get_task("backfill_quotes_to_kafka").python_callable
    with pytest.raises(AirflowSkipException, match="airflow backfill create"):
        body(dag_run=SimpleNamespace(run_type="scheduled"))


@pytest.mark.integration
@pytest.mark.slow
def test_backfill_dag_run_fetches_its_day_and_airflow_backfill_makes_one_run_a_day(
    backfill_dag, airflow_db, simulator_env, kafka, make_topic, warehouse, monkeypatch, capfd
) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from moonwatch.kafka import consume_batches, open_consumer, wait_for_assignment
    from moonwatch.messages import parse_quote_message

    topic = make_topic()
    monkeypatch.setenv("MOONWATCH_TOPIC", topic)
    monkeypatch.setenv("MOONWATCH_SYMBOLS", "BTC")
    monkeypatch.setenv("MOONWATCH_WAREHOUSE_URL", airflow_db.warehouse_url)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day = today - timedelta(days=3)

    run = backfill_dag.test(logical_date=day)
    assert run.state == "success"
    consumer = open_consumer(kafka, f"reader-{topic}", topic)
    wait_for_assignment(consumer)
    values = [r.value for batch in consume_batches(consumer, idle_s=2) for r in batch]
    consumer.close()
    stamps = sorted(parse_quote_message(v).last_updated for v in values)
    # A run at `day` covers the day before it (its data interval): every minute, once.
    assert len(stamps) == 1440
    assert stamps[0] == day - timedelta(days=1) and stamps[-1] == day - timedelta(minutes=1)

    # What `make up` does on a fresh warehouse offline (moonwatch.stack.history): the real
    # `airflow backfill create` for the last 30 days, one run per day.
    warehouse.execute("delete from raw.crypto_quotes where last_updated < now() - interval '1 day'")
    assert not has_history(airflow_db.warehouse_url, datetime.now(UTC))
    before = datetime.now(UTC)
    assert request_history(str(Path(sys.executable).parent / "airflow"), deadline_s=0) == 0
    after = datetime.now(UTC)
    with create_session() as session:
        runs = session.scalars(
            select(DagRun)
            .where(DagRun.dag_id == DAG_ID, DagRun.backfill_id.is_not(None))
            .order_by(DagRun.logical_date)
        ).all()
        intervals = [(r.data_interval_start, r.data_interval_end, str(r.run_type)) for r in runs]
    # 30 whole days, today's (unfinished) interval not among them, and minus the day the
    # dag.test() run above already holds (Airflow's backfill skips existing runs).
    assert len(intervals) == 29
    for start, end, run_type in intervals:
        assert end - start == timedelta(days=1) and "backfill" in run_type
    # Up to the midnight the request saw (either one, should it have run across midnight).
    midnights = {t.replace(hour=0, minute=0, second=0, microsecond=0) for t in (before, after)}
    assert intervals[-1][1] in midnights
    assert intervals[0][0] == intervals[-1][1] - timedelta(days=30)
    # Asked again (a second `make up` before the history has landed): no second backfill.
    assert request_history(str(Path(sys.executable).parent / "airflow"), deadline_s=0) == 0
    # The README's command for a range by hand reaches the same Airflow, which refuses a
    # second backfill while one runs (and says so).
    capfd.readouterr()
    days = ["--from-date", "2026-01-01", "--to-date", "2026-01-02"]
    assert history_main(["backfill", *days]) != 0
    said = "".join(capfd.readouterr())
    assert "Another backfill is running for Dag crypto_quotes_backfill" in said


def test_history_is_requested_only_on_a_warehouse_without_it(warehouse, warehouse_url) -> None:
    now = datetime.now(UTC)
    assert not has_history(warehouse_url, now)
    warehouse.execute(
        "insert into raw.crypto_quotes (coin_id, quote_currency, last_updated, message,"
        " kafka_topic, kafka_partition, kafka_offset)"
        " values (1, 'USD', %s, '{\"source\": \"simulator\"}', 't', 0, 0)",
        (now - timedelta(days=2),),
    )
    assert has_history(warehouse_url, now)
    assert history_days({}) == 30 and history_days({"MOONWATCH_HISTORY_DAYS": "0"}) == 0
    with pytest.raises(StackError, match="MOONWATCH_HISTORY_DAYS='a month'"):
        history_days({"MOONWATCH_HISTORY_DAYS": "a month"})
    argv = backfill_argv("airflow", datetime(2026, 3, 31, 17, 5, tzinfo=UTC))
    assert argv[argv.index("--from-date") + 1] == "2026-03-01T00:00:00+00:00"
    assert argv[argv.index("--to-date") + 1] == "2026-03-31T00:00:00+00:00"
