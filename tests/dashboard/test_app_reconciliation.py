"""AppTest: the page shows the newest reconciliation verdict of the source it shows, and a
mismatch is loud (an error naming the coin), not a footnote."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dashboard import marts_data
from tests.dashboard.test_app import page_text, run_app

pytestmark = pytest.mark.integration

_COLUMNS = (
    "run_id text, source text, is_simulated boolean, sampled_at timestamptz, "
    "checked_at timestamptz, samples bigint, matched bigint, mismatched bigint, "
    "superseded bigint, not_loaded bigint, pending bigint, mismatched_coins text, status text, "
    "is_latest boolean"
)


@pytest.fixture
def marts(loader) -> Iterator[marts_data.SmallData]:
    data = marts_data.fill_small(loader)
    loader.execute("drop view if exists marts.reconciliation_runs")
    loader.execute(f"create table marts.reconciliation_runs ({_COLUMNS})")
    yield data
    loader.execute("drop table if exists marts.reconciliation_runs")
    marts_data.drop_marts(loader)


def _run(loader, run_id: str, source: str, minutes_ago: int, status: str, **counts: object):
    row = {"samples": 3, "matched": 3, "mismatched": 0, "superseded": 0, "not_loaded": 0,
           "pending": 0, "mismatched_coins": None} | counts  # fmt: skip
    loader.execute(
        "insert into marts.reconciliation_runs values (%s, %s, %s, now() - make_interval("
        "mins => %s), now(), %s, %s, %s, %s, %s, %s, %s, %s, false)",
        (run_id, source, source == "simulator", minutes_ago, row["samples"], row["matched"],
         row["mismatched"], row["superseded"], row["not_loaded"], row["pending"],
         row["mismatched_coins"], status),
    )  # fmt: skip
    loader.execute(
        "update marts.reconciliation_runs set is_latest = (sampled_at = (select max(sampled_at)"
        " from marts.reconciliation_runs r where r.source = reconciliation_runs.source))"
    )


def test_app_says_when_nothing_was_reconciled_yet(marts, dashboard_env):
    at = run_app()
    assert not at.exception
    assert "Reconciliation: no run yet" in page_text(at)


def test_app_shows_a_reconciliation_mismatch_of_its_source_loudly(marts, loader, dashboard_env):
    shown, other = "simulator", "coinmarketcap"  # fill_small's marts are simulated
    _run(loader, "old", shown, 90, "ok")
    _run(loader, "new", shown, 30, "error", matched=2, mismatched=1, mismatched_coins="BTC (1)")
    _run(loader, "elsewhere", other, 5, "ok")
    at = run_app()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("1 mismatched" in e and "BTC" in e for e in errors), errors


def test_app_shows_a_clean_reconciliation_as_checked(marts, loader, dashboard_env):
    shown = "simulator"
    _run(loader, "new", shown, 10, "ok", matched=2, superseded=1)
    at = run_app()
    assert not at.exception and not at.error
    assert "2 of 3 coins matched the source" in page_text(at)
