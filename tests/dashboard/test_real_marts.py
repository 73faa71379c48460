"""The dashboard over marts the real dbt project built from raw rows (no hand-made tables).

This is the column contract between ``dbt_project/models/marts`` and ``streamlit_app``: every
query the page runs, and the page itself, against what ``dbt run`` makes of a warehouse that
switched from the simulator to CoinMarketCap and holds FX rates of two days.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from moonwatch.dbt.runner import run_dbt
from streamlit_app import queries
from tests.dashboard import marts_data
from tests.dashboard.test_app import metric, page_text, run_app
from tests.dbt.support import raw_quote_message

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _quote(conn: psycopg.Connection, coin_id: int, price: float, at: datetime, source: str):
    message = raw_quote_message(
        coin_id,
        price,
        at,
        source=source,
        fetched_at=at + timedelta(seconds=1),
        cmc_rank=1 if coin_id == 1 else 2,
    )
    conn.execute(
        "insert into raw.crypto_quotes (coin_id, quote_currency, last_updated, message,"
        " kafka_topic, kafka_partition, kafka_offset, loaded_at)"
        " values (%s, 'USD', %s, %s, 'crypto', 0, 0, %s)",
        (coin_id, at, Jsonb(message), at + timedelta(seconds=3)),
    )


@pytest.fixture
def dbt_run(warehouse_url: str, tmp_path: Path) -> Callable[[], None]:
    def _run() -> None:
        run_dbt(
            ["run", "--full-refresh"],
            warehouse_url=warehouse_url,
            target_path=tmp_path / "target",
            log_path=tmp_path / "logs",
            check=True,
        )

    return _run


def _plan(sql: str, **params: object) -> str:
    """Postgres' plan for the dashboard's ``sql`` as its role runs it. Scans that read every
    row are priced out: with a handful of test rows they would always win, where the page's
    10M rows make them the slow choice."""
    from sqlalchemy import text

    with queries.connection().connect() as conn:
        conn.execute(text("set local enable_seqscan = off"))
        conn.execute(text("set local enable_bitmapscan = off"))
        rows = conn.execute(text(f"explain {sql}"), params).fetchall()
    return "\n".join(row[0] for row in rows)


def test_page_and_queries_over_real_dbt_marts(warehouse, loader, dbt_run, dashboard_env):
    now = datetime.now(UTC).replace(microsecond=0)
    # Two days of simulated quotes, then the switch: the last hour is CoinMarketCap's.
    for hours_ago in (48, 30, 3, 2):
        for coin_id, price in ((1, 50_000.0), (1027, 2_500.0)):
            _quote(warehouse, coin_id, price, now - timedelta(hours=hours_ago), "simulator")
    for minutes_ago in (50, 20, 1):
        _quote(warehouse, 1, 60_000.0, now - timedelta(minutes=minutes_ago), "coinmarketcap")
    for day, rate in ((now.date() - timedelta(days=1), 0.5), (now.date(), 0.92)):
        warehouse.execute(
            "insert into raw.fx_rates (as_of_date, currency, rate_per_usd, source, loaded_at)"
            " values (%s, 'EUR', %s, 'frankfurter', now())",
            (day, rate),
        )
    marts_data.drop_marts(loader)  # the hand-made tables of other tests: dbt builds its own
    try:
        dbt_run()
        db = queries.database_key()
        summary = queries.sources(db).set_index("source")
        assert summary.loc["coinmarketcap", "coins"] == 1
        assert summary.loc["simulator", "coins"] == 2
        assert queries.coins(db, source="coinmarketcap")["coin_id"].tolist() == [1]
        latest = queries.latest_quotes(db, (1, 1027), source="coinmarketcap")
        assert latest["price"].tolist() == [60_000.0]
        hourly = queries.price_hourly(db, (1,), source="coinmarketcap")
        assert set(hourly["close_price"]) == {60_000.0}
        history = queries.quote_history(db, (1,), source="simulator")
        assert set(history["price"]) == {50_000.0}
        rates = queries.fx_rates(db)
        assert sorted(rates.loc[rates["currency"] == "EUR", "rate_per_usd"]) == [0.5, 0.92]
        health = queries.pipeline_health(db)
        assert {"crypto_quotes", "crypto_listings", "fx_rates"} <= set(health["source_name"])

        # The percent-change history reads quotes_coins through the dashboard's covering
        # index alone (no heap page per quote: 183 ms p95 at 10M raw rows when it did).
        loader.execute("vacuum analyze marts.quotes_coins")  # sets the visibility map
        assert "Index Only Scan" in _plan(
            queries.QUOTE_HISTORY_SQL,
            coin_ids=[1],
            source="simulator",
            days=queries.HISTORY_DAYS,
            points=queries.MAX_POINTS_PER_COIN,
        )

        at = run_app()
        assert not at.exception and not at.error
        text = page_text(at)
        assert "live · CoinMarketCap" in text and "SIMULATED DATA" not in text
        assert "also holds 2 coins of simulated data from before the switch" in text
        assert metric(at, "BTC price").value == "$60,000.00"
        at.segmented_control(key="currency").set_value("EUR").run()
        assert metric(at, "BTC price").value == "€55,200.00"
    finally:
        marts_data.drop_marts(loader)
