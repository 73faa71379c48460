"""Real runs (`dag.test()`) of the dbt checks on a fresh install: what is not an error must not
look like one, and a real failure stays red (issue 13.10); real runs of the per-minute quotes
build, whose data tests fail the run on a bad row (issue 15); and a real build whose only
warehouse setting is the Airflow connection (issue 16.2). Each run costs ~10 s of Airflow
start-up, so there are few."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import lru_cache

import psycopg
import pytest
from psycopg.types.json import Jsonb

from moonwatch import settings
from moonwatch.dbt.build import state_dir
from moonwatch.dbt.cosmos import QUOTES_SELECTION
from moonwatch.dbt.runner import run_dbt
from moonwatch.stack.config import StackConfig
from tests.dags.support import load_dag

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _state(run, task_id: str) -> str:
    return next(ti.state for ti in run.get_task_instances() if ti.task_id == task_id)


def _drop_built_relations(conn: psycopg.Connection) -> None:
    """The warehouse as a fresh install has it: raw tables, empty staging and marts schemas
    (their grants kept), whatever earlier tests built gone."""
    for kind, relkinds in (("view", "('v')"), ("table", "('r')")):
        names = conn.execute(
            "select format('%I.%I', n.nspname, c.relname) from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace"
            f" where n.nspname in ('staging', 'marts') and c.relkind in {relkinds}"
        ).fetchall()
        for (name,) in names:
            conn.execute(f"drop {kind} if exists {name} cascade")


def _insert_quote(conn: psycopg.Connection, coin_id: int, price: float) -> None:
    now = datetime.now(UTC)
    message = {
        "schema_version": 1,
        "source": "simulator",
        "coin_id": coin_id,
        "symbol": f"C{coin_id}",
        "name": f"Coin {coin_id}",
        "slug": f"coin-{coin_id}",
        "quote_currency": "USD",
        "price": price,
        "market_cap": price * 10,
        "last_updated": now.isoformat(),
        "fetched_at": now.isoformat(),
    }
    conn.execute(
        "insert into raw.crypto_quotes (coin_id, quote_currency, last_updated, message,"
        " kafka_topic, kafka_partition, kafka_offset) values (%s, 'USD', %s, %s, 'crypto', 0, 0)",
        (coin_id, now, Jsonb(message)),
    )


def test_audit_skips_with_its_reason_on_a_fresh_install_and_fails_on_a_bad_row(
    airflow_db: StackConfig, warehouse: psycopg.Connection, capfd: pytest.CaptureFixture[str]
) -> None:
    _drop_built_relations(warehouse)
    dag = load_dag("crypto_marts_audit")

    # Fresh install: the daily run comes before any build. Skipped, with the reason.
    run = dag.test()
    assert (run.state, _state(run, "dbt_test_audit")) == ("success", "skipped")
    out = capfd.readouterr()
    assert "Nothing to audit yet" in out.out + out.err

    # Built, with a bad row in a mart: a real failure, and it stays red.
    _insert_quote(warehouse, 1, 100.0)
    run_dbt(
        ["build", "--select", *QUOTES_SELECTION],
        warehouse_url=airflow_db.warehouse_url,
        check=True,
    )
    warehouse.execute("update marts.quotes_coins set price = -1")
    run = dag.test()
    assert (run.state, _state(run, "dbt_test_audit")) == ("failed", "failed")


def test_the_quotes_build_builds_the_marts_and_a_failing_data_test_fails_the_run(
    airflow_db: StackConfig,
    warehouse: psycopg.Connection,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """crypto_transform is one plain task, so a whole real run (`dag.test()`) builds the quote
    marts; its `dbt build` keeps the per-build data tests on the path, and one that finds a bad
    row fails the task and the run (no retry: the same rows would fail the same test)."""
    dag = load_dag("crypto_transform")
    assert dag.task_ids == ["dbt_build"]
    _drop_built_relations(warehouse)
    _insert_quote(warehouse, 1, 100.0)
    target = state_dir() / "target"
    (target / "run_results.json").unlink(missing_ok=True)
    run = dag.test()
    assert (run.state, _state(run, "dbt_build")) == ("success", "success")
    # The build keeps what partial parsing needs and skips the JSON artifacts nothing reads.
    assert (target / "partial_parse.msgpack").exists()
    assert not (target / "run_results.json").exists()
    built = warehouse.execute("select coin_id, price::float8 from marts.quotes_coins").fetchall()
    assert built == [(1, 100.0)]
    latest = warehouse.execute("select coin_id from marts.latest_quotes").fetchall()
    assert latest == [(1,)]

    # A bad row in the mart, as a bug would leave it, within the per-build tests' recent window;
    # then the next load's build.
    warehouse.execute("update marts.quotes_coins set price = -1, transformed_at = now()")
    _insert_quote(warehouse, 2, 50.0)
    with caplog.at_level("INFO"):
        run = dag.test()
    assert (run.state, _state(run, "dbt_build")) == ("failed", "failed")
    out = capfd.readouterr()
    assert "positive_quotes_coins_price" in caplog.text + out.out + out.err
    tries = next(ti.try_number for ti in run.get_task_instances() if ti.task_id == "dbt_build")
    assert tries == 1


def test_reference_freshness_without_fx_rates_is_a_warning_not_a_red_run(
    airflow_db: StackConfig, warehouse: psycopg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    # Quotes and listings fresh; the FX API never answered, so raw.fx_rates is empty.
    _insert_quote(warehouse, 1, 100.0)
    warehouse.execute(
        "insert into raw.crypto_listings (snapshot_at, coin_id, quote_currency, source, coin)"
        " values (now(), 1, 'USD', 'simulator', %s)",
        (Jsonb({"id": 1, "symbol": "C1", "quote": {"USD": {"price": 1.0}}}),),
    )
    dag = load_dag("crypto_transform_reference")
    # The freshness task alone: dag.test() cannot drive Cosmos's watcher sensors (see
    # test_crypto_transform.py); the build's tests run in tests/dbt.
    freshness = dag.partial_subset("source_freshness", include_upstream=False)
    with caplog.at_level("WARNING"):
        run = freshness.test()
    assert (run.state, _state(run, "source_freshness")) == ("success", "success")
    assert "optional source fx_rates" in caplog.text


def test_in_airflow_dbt_needs_only_the_moonwatch_warehouse_connection(
    airflow_db: StackConfig, warehouse: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone else's Airflow, configured the usual way: the warehouse is the Airflow connection
    `moonwatch_warehouse` and nothing else. The quote build (a whole crypto_transform run: one
    real `dbt build`) and the freshness check still reach it."""
    _drop_built_relations(warehouse)
    _insert_quote(warehouse, 1, 100.0)
    warehouse.execute(
        "insert into raw.crypto_listings (snapshot_at, coin_id, quote_currency, source, coin)"
        " values (now(), 1, 'USD', 'simulator', %s)",
        (Jsonb({"id": 1, "symbol": "C1", "quote": {"USD": {"price": 1.0}}}),),
    )
    for name in list(os.environ):
        if name == "MOONWATCH_WAREHOUSE_URL" or name.startswith("MOONWATCH_DBT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AIRFLOW_CONN_MOONWATCH_WAREHOUSE", airflow_db.warehouse_url)
    # Settings are read once a process; this test's tasks must not see the ones read before.
    monkeypatch.setattr(settings, "_cached", lru_cache(maxsize=1)(settings.load_settings))

    run = load_dag("crypto_transform").test()
    assert (run.state, _state(run, "dbt_build")) == ("success", "success")
    built = warehouse.execute("select coin_id, price::float8 from marts.quotes_coins").fetchall()
    assert built == [(1, 100.0)]

    reference = load_dag("crypto_transform_reference")
    run = reference.partial_subset("source_freshness", include_upstream=False).test()
    assert (run.state, _state(run, "source_freshness")) == ("success", "success")
