"""The benchmark's generated raw history is made of valid quote messages.

`make bench` times dbt on millions of raw rows that set-based SQL writes
(`bench/dbt_incremental.insert_minutes_sql`), not the loader. Here that SQL fills a few minutes
on a real PostgreSQL, and every row must be one the loader would have stored: a message that
validates, key columns that agree with it, and a price that moves from minute to minute.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from bench.dbt_incremental import insert_minutes_sql
from moonwatch.messages import QuoteMessage, parse_quote_message

pytestmark = pytest.mark.integration

ANCHOR = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("with_loaded_at", [True, False])
def test_every_generated_row_is_a_valid_quote_that_its_columns_agree_with(
    warehouse: psycopg.Connection, with_loaded_at: bool
) -> None:
    warehouse.execute(
        insert_minutes_sql(with_loaded_at),
        {"lo": -2, "hi": 1, "anchor": ANCHOR, "coins": 4},
    )
    rows = warehouse.execute(
        "select coin_id, quote_currency, last_updated, source, message::text, loaded_at"
        " from raw.crypto_quotes order by coin_id, last_updated"
    ).fetchall()
    assert len(rows) == 3 * 4  # minutes -2, -1, 0 of coins 1..4

    prices: dict[int, set[float]] = {}
    for coin_id, currency, last_updated, source, text, loaded_at in rows:
        quote = parse_quote_message(text.encode(), now=ANCHOR)
        # Every field of the contract is present: none was left to its default.
        assert set(QuoteMessage.model_fields) <= set(quote.model_fields_set)
        assert (quote.coin_id, quote.quote_currency, quote.source) == (coin_id, currency, source)
        assert quote.last_updated == last_updated
        assert quote.fetched_at == last_updated + dt.timedelta(seconds=2)
        assert (last_updated - ANCHOR) % dt.timedelta(minutes=1) == dt.timedelta(0)
        if with_loaded_at:
            assert loaded_at == last_updated + dt.timedelta(seconds=3)
        prices.setdefault(coin_id, set()).add(quote.price)
    assert all(len(seen) == 3 for seen in prices.values()), prices
