"""The quote marts under inputs real data and real operators produce (issue 13): a zero market
cap and a bad row, a switch from the simulator to CoinMarketCap (and of quote currency), and a
loader transaction that commits long after it stamped its rows. Real Postgres, real dbt."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
import pytest

from moonwatch.dbt.cosmos import QUOTES_SELECTION
from moonwatch.stack.postgres import WAREHOUSE_DB
from tests.dbt.support import T0, run_results

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# What crypto_transform runs every minute (see moonwatch.dbt.cosmos and its DAG).
PER_MINUTE_BUILD = ("build", "--select", *QUOTES_SELECTION, "--exclude", "tag:audit")


def minute(m: int) -> datetime:
    return T0 + timedelta(minutes=m)


def test_a_zero_market_cap_and_a_bad_row_never_stop_the_other_coins_marts(
    dbt, insert_quote, query, dbt_workdir
) -> None:
    for coin_id, price in ((1, 100.0), (1027, 3000.0), (5426, 150.0)):
        insert_quote(coin_id, price, minute(0))
    dbt("build", "--full-refresh", "--select", *QUOTES_SELECTION)

    # The next minute: CoinMarketCap has not verified ETH's supply (market cap 0, supplies
    # null), and SOL's row is genuinely bad (price -5: no contract accepts it).
    insert_quote(1, 101.0, minute(1))
    insert_quote(
        1027,
        3001.0,
        minute(1),
        market_cap=0.0,
        fully_diluted_market_cap=0.0,
        circulating_supply=None,
        total_supply=None,
    )
    insert_quote(
        5426, -5.0, minute(1), market_cap=750.0, volume_24h=75.0, fully_diluted_market_cap=750.0
    )
    result = dbt(*PER_MINUTE_BUILD, check=False)

    # Nothing failed, nothing was skipped: the bad row is a warning in the test results...
    assert result.returncode == 0, result.output
    results = run_results(dbt_workdir)
    assert {r["status"] for r in results.values()} <= {"success", "pass", "warn", "no-op"}
    warned = {name: r["failures"] for name, r in results.items() if r["status"] == "warn"}
    assert warned == {"is_null_stg_crypto_quotes_invalid_reason": 1}
    # ...every other coin's marts moved on, ETH's zero market cap included...
    latest = {r["coin_id"]: r for r in query("select * from marts.latest_quotes")}
    assert (latest[1]["price"], latest[1027]["price"]) == (101.0, 3001.0)
    assert latest[1027]["market_cap"] == 0.0 and latest[1027]["circulating_supply"] is None
    closes = {
        r["coin_id"]: r["close_price"]
        for r in query("select coin_id, close_price from marts.coin_price_hourly")
    }
    assert closes == {1: 101.0, 1027: 3001.0, 5426: 150.0}
    # ...the bad row stayed out of every mart...
    assert latest[5426]["price"] == 150.0
    assert not query("select 1 from marts.quotes_coins where price <= 0")
    # ...and pipeline_health reports it.
    (health,) = query("select * from marts.pipeline_health where source_name = 'crypto_quotes'")
    assert (health["source"], health["quarantined_last_hour"], health["status"]) == (
        "simulator",
        1,
        "warn",
    )
    assert health["status_reason"] == (
        "1 quote(s) in the last hour left out of the marts (price is not > 0)"
    )
    # The daily audit agrees: the marts hold every good row and no bad one.
    dbt("test", "--select", "tag:audit,stg_crypto_quotes+")


def test_simulated_and_real_quotes_and_top_10s_never_mix(
    dbt, insert_quote, insert_listings, query
) -> None:
    # Simulated history, then the switch to a real key: a real quote for the same coin and
    # the same minute (the same last_updated) as a simulated one.
    insert_quote(1, 100.0, minute(5))
    insert_quote(1, 102.0, minute(10))
    insert_listings(T0, [(1, 300.0, 3.0), (2, 200.0, 2.0), (3, 100.0, 1.0)], source="simulator")
    dbt(
        "build",
        "--full-refresh",
        "--select",
        *QUOTES_SELECTION,
        "+cap_top_10",
        "+vol_top_10",
    )
    insert_quote(1, 50_000.0, minute(10), source="coinmarketcap")
    # The real listings come in EUR (MOONWATCH_QUOTE_CURRENCY changed with the key).
    insert_listings(minute(15), [(1, 9e11, 3e10), (2, 4e11, 2e10)], quote_currency="EUR")
    dbt("build", "--select", *QUOTES_SELECTION, "cap_top_10", "vol_top_10")

    quotes = query(
        "select source, price from marts.quotes_coins order by last_updated_at, source desc"
    )
    assert [(r["source"], r["price"]) for r in quotes] == [
        ("simulator", 100.0),
        ("simulator", 102.0),
        ("coinmarketcap", 50_000.0),
    ]
    latest = query(
        "select source, quote_currency, price, fetched_at from marts.latest_quotes order by 1"
    )
    assert [(r["source"], r["price"]) for r in latest] == [
        ("coinmarketcap", 50_000.0),
        ("simulator", 102.0),
    ]
    # One candle per source for the switchover hour, never a mixed one.
    candles = query(
        "select source, is_simulated, open_price, close_price, samples"
        " from marts.coin_price_hourly where hour_at = %s order by source",
        T0,
    )
    assert [tuple(c.values()) for c in candles] == [
        ("coinmarketcap", False, 50_000.0, 50_000.0, 1),
        ("simulator", True, 100.0, 102.0, 2),
    ]
    # Each source keeps the top 10 of its own latest snapshot, in that snapshot's currency.
    for mart in ("cap_top_10", "vol_top_10"):
        top = query(
            f"select source, snapshot_at, quote_currency, coin_id, share_of_top_10"
            f" from marts.{mart} order by source, rank"
        )
        assert [
            (r["source"], r["snapshot_at"], r["quote_currency"], r["coin_id"]) for r in top
        ] == [
            ("coinmarketcap", minute(15), "EUR", 1),
            ("coinmarketcap", minute(15), "EUR", 2),
            ("simulator", T0, "USD", 1),
            ("simulator", T0, "USD", 2),
            ("simulator", T0, "USD", 3),
        ], mart
        shares = {
            s: sum(r["share_of_top_10"] for r in top if r["source"] == s)
            for s in {"simulator", "coinmarketcap"}
        }
        assert shares == pytest.approx({"simulator": 1.0, "coinmarketcap": 1.0}), mart

    # MOONWATCH_QUOTE_CURRENCY changes to EUR: the USD row stays, with its own fetched_at,
    # so a reader can tell it is frozen; the EUR row is the current one.
    insert_quote(1, 46_000.0, minute(11), source="coinmarketcap", quote_currency="EUR")
    dbt(*PER_MINUTE_BUILD)
    real = query(
        "select quote_currency, price, fetched_at from marts.latest_quotes"
        " where source = 'coinmarketcap' order by fetched_at"
    )
    assert [(r["quote_currency"], r["price"]) for r in real] == [
        ("USD", 50_000.0),
        ("EUR", 46_000.0),
    ]
    assert real[0]["fetched_at"] < real[1]["fetched_at"]
    dbt("test", "--select", "tag:audit")


@pytest.mark.parametrize("writer", ["loader role", "another role"])
def test_a_row_committed_late_ends_up_in_every_quotes_mart(
    dbt, insert_quote, query, pg, writer: str
) -> None:
    # No margin: what keeps the row is the safe point itself. A session of another role (here
    # the admin) hides its transaction start from the dbt role; it counts as having started
    # var incremental_lookback ago.
    no_margin = ("--vars", "{incremental_margin: '0 seconds'}")
    url = pg.warehouse_url
    if writer == "another role":
        url = pg.admin_url.rsplit("/", 1)[0] + "/" + WAREHOUSE_DB
    insert_quote(1, 100.0, minute(0))
    dbt("build", "--full-refresh", "--select", *QUOTES_SELECTION, *no_margin)

    with psycopg.connect(url) as loader:
        # A loader transaction stamps its row (loaded_at: the insert's clock time)...
        insert_quote(1027, 3000.0, minute(1), conn=loader)
        (stamped,) = loader.execute(
            "select loaded_at from raw.crypto_quotes where coin_id = 1027"
        ).fetchone()
        # ...and stays open while 30 minutes of other loads commit and the marts build.
        insert_quote(1, 101.0, minute(31), loaded_at=stamped + timedelta(minutes=30))
        dbt(*PER_MINUTE_BUILD, *no_margin)
        assert not query("select 1 from marts.quotes_coins where coin_id = 1027")
        loader.commit()

    # The next build takes the row, 30 minutes older than the newest one it holds.
    dbt(*PER_MINUTE_BUILD, *no_margin)
    (row,) = query("select * from marts.quotes_coins where coin_id = 1027")
    (newest,) = query("select max(loaded_at) as loaded_at from marts.quotes_coins")
    assert newest["loaded_at"] - row["loaded_at"] >= timedelta(minutes=30)
    assert query("select price from marts.latest_quotes where coin_id = 1027") == [
        {"price": 3000.0}
    ]
    assert query("select close_price from marts.coin_price_hourly where coin_id = 1027") == [
        {"close_price": 3000.0}
    ]
    counted = query(
        "select sum(rows_loaded) as n from intermediate.int_loads_per_minute"
        " where source_name = 'crypto_quotes'"
    )
    assert counted == [{"n": 3}]
    # And the audit's full recomputation finds nothing missing.
    dbt("test", "--select", "tag:audit,stg_crypto_quotes+")


def test_a_mart_stored_with_an_older_grain_rebuilds_in_full_by_itself(
    dbt, insert_quote, query, warehouse
) -> None:
    insert_quote(1, 100.0, minute(0))
    insert_quote(1, 200.0, minute(0), source="coinmarketcap")
    dbt("build", "--full-refresh", "--select", *QUOTES_SELECTION)
    # latest_quotes as a deployment from before `source` was in its key has it.
    (index,) = warehouse.execute(
        "select indexrelid::regclass::text from pg_index"
        " where indrelid = 'marts.latest_quotes'::regclass and indisunique"
    ).fetchone()
    warehouse.execute(f"drop index {index}")
    warehouse.execute("delete from marts.latest_quotes where source = 'coinmarketcap'")
    warehouse.execute("create unique index on marts.latest_quotes (coin_id, quote_currency)")

    result = dbt(*PER_MINUTE_BUILD)
    assert "Rebuilding" in result.output and "latest_quotes" in result.output
    assert query("select source, price from marts.latest_quotes order by source") == [
        {"source": "coinmarketcap", "price": 200.0},
        {"source": "simulator", "price": 100.0},
    ]
    unique = query(
        "select indexdef from pg_indexes where schemaname = 'marts'"
        " and tablename = 'latest_quotes' and indexdef like 'CREATE UNIQUE%%'"
    )
    assert [u["indexdef"].split(" USING btree ")[1] for u in unique] == [
        "(source, coin_id, quote_currency)"
    ]
