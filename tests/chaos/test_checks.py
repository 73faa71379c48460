"""The chaos suite's own checks can fail: run in `make test`, on the test services, no attack.

The old "nothing doubled" checks counted rows per natural key, which the primary key makes
always one; the ledger check compares raw with what was produced. The old report kept rows of
attacks not run again; the report now comes from one run only.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from moonwatch.stack.config import StackConfig
from tests.chaos import harness as h
from tests.chaos.conftest import render_report


def _store(conn: psycopg.Connection, message: h.QuoteMessage) -> None:
    conn.execute(
        "insert into raw.crypto_quotes (coin_id, quote_currency, last_updated, message,"
        " kafka_topic, kafka_partition, kafka_offset) values (%s, %s, %s, %s, 'crypto', 0, 0)",
        (
            message.coin_id,
            message.quote_currency,
            message.last_updated,
            message.model_dump_json(),
        ),
    )


@pytest.mark.integration
def test_ledger_check_sees_lost_altered_and_unexpected_rows(
    pg: StackConfig, warehouse: psycopg.Connection
) -> None:
    at = h.minute_stamp(7)
    produced = h.synthetic_quotes(0, 4, at)
    ledger = h.Ledger(sent={h.natural_key(m): m for m in (produced[0], produced[1], produced[3])})
    _store(warehouse, produced[0])  # as produced
    # The same natural key with other content: a different message won the key.
    _store(warehouse, produced[1].model_copy(update={"price": produced[1].price * 2}))
    _store(warehouse, produced[2])  # nobody produced this one (in this ledger)
    problems = h.ledger_mismatches(pg, ledger)
    assert problems == {
        "missing": [h.natural_key(produced[3])],
        "unexpected": [h.natural_key(produced[2])],
        "altered": [h.natural_key(produced[1])],
    }
    # What the old check asserted holds all the same: one row per key, so it could not fail.
    counts = h.keys_in_raw(pg, range(h.SYNTHETIC_BASE, h.SYNTHETIC_BASE + 4), at)
    assert set(counts.values()) == {1}
    _store(warehouse, produced[3])  # nothing missing now: altered and unexpected remain
    with pytest.raises(AssertionError, match="raw differs from what was produced"):
        h.assert_exactly_once(pg, ledger, timeout=5)

    warehouse.execute("truncate raw.crypto_quotes")
    for message in (produced[0], produced[1], produced[3]):
        _store(warehouse, message)
    h.assert_exactly_once(pg, ledger, timeout=5)


def test_report_holds_this_run_only_with_a_threat_model() -> None:
    attacks = {"test_chaos_a": "a must hold", "test_chaos_b": "b must hold"}
    report = render_report(
        attacks,
        outcomes={"test_chaos_a": {"passed": 2, "skipped": 1}, "test_other": {"failed": 1}},
        durations={"test_chaos_a": 12.0},
        notes={"test_chaos_a": "did not count: landed after the last commit"},
        evidence=[("test_chaos_a", "round 0: 1,200 of 60,000 rows committed when killed")],
        header=f"Written on {datetime.now(UTC):%Y-%m-%d}",
    )
    table = report.split("## Evidence", 1)[0]
    assert "| `test_chaos_a` | a must hold | 3 | 2 | 0 | 1 | 12 |" in table
    assert "| `test_chaos_b` | b must hold | not run in this run |" in table
    # A chaos-marked test outside the attack list still gets its row.
    assert "| `test_other` | (a chaos-marked test outside" in table and "| 1 | 0 | 1 |" in table
    assert "round 0: 1,200 of 60,000 rows committed when killed" in report
    assert "## Threat model" in report and "who can connect" in report
    # The earlier findings are history, outside the table, and report no passes of old runs.
    history = report.split("## Findings of earlier runs", 1)[1]
    assert "History, not this run's results" in history and "passed)" not in history
