"""The dashboard's credits line: the producer's pace from marts.credit_budget, for the source
the page shows, or what is missing."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.dashboard.test_app import page_text, run_app

pytestmark = pytest.mark.integration


@pytest.fixture
def credit_budget(loader: psycopg.Connection) -> Iterator[psycopg.Connection]:
    loader.execute("drop view if exists marts.credit_budget")
    loader.execute("drop table if exists marts.credit_budget")
    loader.execute(
        "create table marts.credit_budget (source text, is_simulated boolean, month text,"
        " credits_budget int, credits_used int, credits_left int, quotes_every_minutes int,"
        " listings_every_minutes int, is_paused boolean, last_quotes_call_at timestamptz,"
        " decided_at timestamptz, summary text)"
    )
    yield loader
    loader.execute("drop table if exists marts.credit_budget")


def test_credits_line_shows_cadence_used_and_left(small_marts, dashboard_env, credit_budget):
    credit_budget.execute(
        "insert into marts.credit_budget values"
        " ('simulator', true, '2026-12', 10000, 1234, 8766, 1, 15, false, now(), now(), ''),"
        " ('coinmarketcap', false, '2026-12', 10000, 1234, 8766, 6, 90, false, now(), now(), '')"
    )
    text = page_text(run_app())
    assert "Credits (simulator, free): quotes every minute · listings every 15 minutes" in text
    assert "1,234 counted this month" in text


def test_credits_line_says_when_the_producer_has_not_run(small_marts, dashboard_env, credit_budget):
    assert "Credits: no producer run has recorded its pace yet." in page_text(run_app())
