"""Reconciliation through the real path: simulator → producer → broker → loader → dbt → marts,
then a second look at the source compared with what the marts hold.

The simulator runs on a clock the test holds, so the producer's call and the sampler's call see
the same coin-minute (a real clock can tick over between them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
import pytest

from moonwatch import reconcile
from moonwatch.ingest import consume_and_load
from moonwatch.pacing import RECONCILE_JOB
from moonwatch.pipeline import fetch_and_produce_quotes
from moonwatch.settings import load_settings
from moonwatch.sources.credits import InMemoryLedgerStore
from moonwatch.sources.simulator import serve_in_thread

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COINS = "BTC,ETH,SOL"


class Clock:
    def __init__(self) -> None:
        # Two minutes back: the contract refuses a source time later than the fetch time.
        self.now = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings_env(
    clock: Clock,
    warehouse_url: str,
    kafka: str,
    make_topic: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    server = serve_in_thread(seed=11, clock=clock)
    topic = make_topic()
    monkeypatch.delenv("CMC_API_KEY", raising=False)
    for name, value in {
        "CMC_BASE_URL": server.url,
        "MOONWATCH_TOPIC": topic,
        "MOONWATCH_SYMBOLS": COINS,
        "MOONWATCH_WAREHOUSE_URL": warehouse_url,
        "MOONWATCH_KAFKA_BOOTSTRAP": kafka,
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield topic
    finally:
        server.stop()


@pytest.fixture
def through_the_pipeline(
    settings_env: str, warehouse_url: str, kafka: str, dbt
) -> Callable[[], None]:
    """Factory: one producer run carried by the real loader and dbt into marts.quotes_coins."""

    def _run() -> None:
        settings = load_settings()
        fetch_and_produce_quotes(settings, ledger_store=InMemoryLedgerStore())
        loaded = consume_and_load(kafka, settings_env, f"loader-{settings_env}", warehouse_url)
        assert loaded["inserted"] == 3, loaded
        dbt("run", "--select", "+quotes_coins")

    return _run


def _sample(run_id: str) -> int:
    """One hourly sample. The paced call log allows reconciliation once an hour; each sample
    here stands for its own hour, so the previous turn is forgotten first (without this the
    test failed whenever its samples crossed a minute boundary)."""
    settings = load_settings()
    with psycopg.connect(settings.require_warehouse_url(), autocommit=True) as conn:
        conn.execute("delete from raw.cmc_credit_calls where job = %s", (RECONCILE_JOB,))
    return reconcile.sample_task(settings, run_id)["sampled"]


def _statuses(warehouse_url: str, run_id: str) -> dict[str, str]:
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "select symbol, status from raw.reconciliation where run_id = %s", (run_id,)
        ).fetchall()
    return dict(rows)


def test_samples_read_the_api_json_not_the_message_builder() -> None:
    moment = "2026-12-01T10:00:00.000Z"
    coins = [
        {"id": 1, "symbol": "BTC", "quote": {"USD": {"price": 1.5e-7, "last_updated": moment}}},
        {"id": 2, "symbol": "NOQ", "quote": {"EUR": {"price": 1.0, "last_updated": moment}}},
        {"id": 3, "symbol": "NOT", "quote": {"USD": {"price": 2.0}}},
        {"id": 4, "symbol": "INF", "last_updated": moment, "quote": {"USD": {"price": "1e400"}}},
    ]
    samples = reconcile.samples_from_coins(coins, "USD", "simulator")
    assert [(s.coin_id, s.price) for s in samples] == [(1, 1.5e-7), (4, None)]
    assert samples[0].last_updated == datetime(2026, 12, 1, 10, tzinfo=UTC)


def test_reconcile_matches_then_catches_a_changed_number_a_lost_quote_and_a_skipped_version(
    clock: Clock, through_the_pipeline: Callable[[], None], warehouse_url: str, dbt
) -> None:
    through_the_pipeline()

    matched = f"matched-{uuid4().hex[:8]}"
    assert _sample(matched) == 3
    assert reconcile.poll_task(load_settings(), matched) == (True, {"matched": 3})
    assert reconcile.report_task(load_settings(), matched)["matched"] == 3

    # A number in the mart that the source never said: loud, and names the coin and field.
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            "update marts.quotes_coins set price = price * 1.01"
            " where symbol = 'BTC' and last_updated_at = %s",
            (clock.now,),
        )
    changed = f"changed-{uuid4().hex[:8]}"
    _sample(changed)
    assert reconcile.poll_task(load_settings(), changed)[0]
    with pytest.raises(reconcile.ReconciliationMismatchError, match=r"BTC .*price differ"):
        reconcile.report_task(load_settings(), changed)
    assert _statuses(warehouse_url, changed) == {
        "BTC": "mismatched",
        "ETH": "matched",
        "SOL": "matched",
    }

    # The source moves on a minute; nothing carries that minute: pending, then lost at the end.
    clock.now += timedelta(minutes=1)
    lost = f"lost-{uuid4().hex[:8]}"
    _sample(lost)
    assert reconcile.poll_task(load_settings(), lost) == (False, {"pending": 3})
    with pytest.raises(reconcile.ReconciliationMismatchError, match=r"not in marts\.quotes_coins"):
        reconcile.report_task(load_settings(), lost)
    assert set(_statuses(warehouse_url, lost).values()) == {"not_loaded"}

    # A version the producer never fetched, with a newer one in the mart, is not comparable.
    skipped = f"skipped-{uuid4().hex[:8]}"
    _sample(skipped)
    clock.now += timedelta(minutes=1)
    through_the_pipeline()
    assert reconcile.poll_task(load_settings(), skipped) == (True, {"superseded": 3})
    assert reconcile.report_task(load_settings(), skipped)["superseded"] == 3

    # What the dashboard reads: one verdict per run, the mismatched coin named.
    dbt("build", "--select", "stg_reconciliation+")
    with psycopg.connect(warehouse_url) as conn:
        runs = {
            run_id: (status, mismatched_coins, is_latest)
            for run_id, status, mismatched_coins, is_latest in conn.execute(
                "select run_id, status, mismatched_coins, is_latest"
                " from marts.reconciliation_runs where run_id = any(%s)",
                ([matched, changed, lost, skipped],),
            )
        }
    assert runs == {
        matched: ("ok", None, False),
        changed: ("error", "BTC (1)", False),
        lost: ("error", None, False),
        skipped: ("ok", None, True),
    }


def test_reconcile_waits_for_marts_that_do_not_exist_yet_and_then_skips(
    settings_env: str, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh install: the sampler runs before dbt has built anything. Waiting is not an
    # error, and nothing to compare at the end is a skip, never a red run.
    monkeypatch.setattr(reconcile, "QUOTES_MART", "marts.quotes_coins_not_built_yet")
    run = f"fresh-{uuid4().hex[:8]}"
    assert _sample(run) == 3
    assert reconcile.poll_task(load_settings(), run) == (False, {"pending": 3})
    with pytest.raises(reconcile.MartsNotBuiltYetError, match="does not exist yet"):
        reconcile.report_task(load_settings(), run)
    assert set(_statuses(warehouse_url, run).values()) == {"pending"}
