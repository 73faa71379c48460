"""The dbt project on the real warehouse: raw rows in, `dbt build`, marts checked row by row."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from moonwatch.dbt.checks import check_source_freshness
from moonwatch.dbt.cosmos import QUOTES_SELECTION, REFERENCE_SELECTION
from moonwatch.dbt.runner import DbtError
from tests.dbt.support import T0, run_results

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def minute(m: int) -> datetime:
    return T0 + timedelta(minutes=m)


def quote_key(
    coin_id: int, currency: str, last_updated: datetime, source: str = "simulator"
) -> str:
    text = f"{source}|{coin_id}|{currency}|{last_updated.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"
    return hashlib.md5(text.encode()).hexdigest()


def test_quotes_marts_build_incrementally_and_equal_a_full_refresh(
    dbt, insert_quote, query, dbt_workdir
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    long_ago, watermark = now - timedelta(minutes=90), now - timedelta(minutes=60)

    # Batch 1: BTC/USD three quotes in the 10:00 hour, ETH/USD one, BTC/EUR one.
    insert_quote(1, 100.0, minute(5), loaded_at=long_ago)
    insert_quote(1, 105.0, minute(30), loaded_at=long_ago)
    insert_quote(1, 96.0, minute(40), loaded_at=long_ago)
    insert_quote(1027, 3000.0, minute(10), loaded_at=long_ago)
    insert_quote(1, 90.0, minute(5), loaded_at=watermark, quote_currency="EUR")
    dbt("build", "--full-refresh")

    rows = query(
        "select * from marts.quotes_coins order by coin_id, quote_currency, last_updated_at"
    )
    assert len(rows) == 5
    btc = rows[1]  # (1, EUR) sorts first
    assert (btc["coin_id"], btc["quote_currency"], btc["price"]) == (1, "USD", 100.0)
    assert btc["quote_key"] == quote_key(1, "USD", minute(5))
    assert (btc["symbol"], btc["name"], btc["slug"], btc["source"]) == (
        "BTC",
        "Bitcoin",
        "bitcoin",
        "simulator",
    )
    assert btc["is_simulated"] is True
    assert btc["market_cap"] == 100_000.0 and btc["volume_24h"] == 1000.0
    assert btc["last_updated_at"] == minute(5) and btc["loaded_at"] == long_ago
    hourly = query(
        "select * from marts.coin_price_hourly where coin_id = 1 and quote_currency = 'USD'"
    )
    assert [
        (h["hour_at"], h["open_price"], h["high_price"], h["low_price"], h["close_price"])
        for h in hourly
    ] == [(T0, 100.0, 105.0, 96.0, 96.0)]
    assert hourly[0]["samples"] == 3 and math.isclose(hourly[0]["avg_price"], 301 / 3)

    # Batch 2, loaded now (the insert's clock time, as the loader stamps it): a quote that
    # closes the 10:00 hour, one that opens 11:00, one in the middle of 10:00, and a
    # re-delivered message (the raw key drops it).
    insert_quote(1, 103.0, minute(55))
    insert_quote(1, 110.0, minute(60))
    insert_quote(1, 101.0, minute(20))
    insert_quote(1, 999.0, minute(5))
    dbt("build")

    # The incremental run read only raw rows loaded since the safe point the full refresh
    # recorded (less the margin), and of those only the ones not yet in the mart: the three
    # new ones.
    assert run_results(dbt_workdir)["quotes_coins"]["adapter_response"]["rows_affected"] == 3
    rows = query("select quote_key, price from marts.quotes_coins")
    assert len(rows) == 8 and len({r["quote_key"] for r in rows}) == 8
    assert 999.0 not in {r["price"] for r in rows}
    hourly = query(
        "select * from marts.coin_price_hourly where coin_id = 1 and quote_currency = 'USD'"
        " order by hour_at"
    )
    assert [
        (
            h["hour_at"],
            h["open_price"],
            h["high_price"],
            h["low_price"],
            h["close_price"],
            h["avg_price"],
            h["samples"],
        )
        for h in hourly
    ] == [
        (T0, 100.0, 105.0, 96.0, 103.0, 101.0, 5),
        (T0 + timedelta(hours=1), 110.0, 110.0, 110.0, 110.0, 110.0, 1),
    ]
    assert hourly[0]["symbol"] == "BTC" and hourly[0]["name"] == "Bitcoin"
    latest = query(
        "select coin_id, quote_currency, price, last_updated_at from marts.latest_quotes"
        " order by coin_id, quote_currency"
    )
    assert [(r["coin_id"], r["quote_currency"], r["price"]) for r in latest] == [
        (1, "EUR", 90.0),
        (1, "USD", 110.0),
        (1027, "USD", 3000.0),
    ]

    # Batch 3: one more quote, built as crypto_transform builds (no audit tests); only it is
    # new, though batch 2 is inside the margin. Then the incremental marts must equal a
    # full refresh: the audit tests say so, and so does a real full refresh.
    insert_quote(1027, 3100.0, minute(65))
    dbt("build", "--exclude", "tag:audit")
    results = run_results(dbt_workdir)
    assert results["quotes_coins"]["adapter_response"]["rows_affected"] == 1
    assert "assert_quotes_coins_matches_full_refresh" not in results
    dbt("test", "--select", "tag:audit")
    results = run_results(dbt_workdir)
    for name in (
        "assert_quotes_coins_matches_full_refresh",
        "assert_coin_price_hourly_matches_full_refresh",
        "assert_quotes_marts_rows_are_valid",
    ):
        assert results[name]["status"] == "pass", name
    snapshot_sql = {
        "quotes_coins": "select * from marts.quotes_coins order by quote_key",
        "coin_price_hourly": "select * from marts.coin_price_hourly"
        " order by coin_id, quote_currency, hour_at",
        "latest_quotes": "select * from marts.latest_quotes order by quote_key",
    }

    def snapshot() -> dict[str, list[dict]]:
        # transformed_at is when dbt wrote the row: the only column a rebuild changes.
        return {
            name: [{k: v for k, v in row.items() if k != "transformed_at"} for row in query(sql)]
            for name, sql in snapshot_sql.items()
        }

    incremental = snapshot()
    assert len(incremental["quotes_coins"]) == 9
    assert len(incremental["coin_price_hourly"]) == 5
    dbt("build", "--full-refresh", "--select", "quotes_coins+")
    assert snapshot() == incremental


def test_top_10_marts_rank_the_latest_snapshot(dbt, insert_listings, query) -> None:
    older, latest = T0, T0 + timedelta(minutes=15)
    insert_listings(older, [(99, 1e12, 1e12)])  # bigger than all, but not in the latest snapshot
    caps = {1: 500.0, 2: 300.0, 3: 300.0, 4: 200.0, 5: 150.0, 6: 120.0, 7: 100.0, 8: 80.0}
    caps |= {9: 60.0, 10: 40.0, 11: 30.0, 12: None}
    vols = {i: float(i * 10) for i in caps}
    vols[5] = None
    insert_listings(latest, [(i, caps[i], vols[i]) for i in caps])
    dbt("build", "--select", "+cap_top_10", "+vol_top_10")

    for mart, values in (("cap_top_10", caps), ("vol_top_10", vols)):
        rows = query(f"select * from marts.{mart} order by rank")
        expected = sorted(
            ((value, coin) for coin, value in values.items() if value is not None),
            key=lambda pair: (-pair[0], pair[1]),
        )[:10]
        total = sum(value for value, _ in expected)
        assert [(r["rank"], r["coin_id"]) for r in rows] == [
            (rank, coin) for rank, (_, coin) in enumerate(expected, 1)
        ], mart
        for row, (value, _) in zip(rows, expected, strict=True):
            assert math.isclose(row["share_of_top_10"], value / total), mart
            assert row["snapshot_at"] == latest
            assert (row["quote_currency"], row["source"], row["is_simulated"]) == (
                "USD",
                "coinmarketcap",
                False,
            )
            assert row["symbol"] == f"C{row['coin_id']}" and row["price"] == 2.5
        assert math.isclose(sum(r["share_of_top_10"] for r in rows), 1.0)
    # Ties on market cap (coins 2 and 3) go to the lower coin_id.
    cap = query("select coin_id from marts.cap_top_10 where rank in (2, 3) order by rank")
    assert [r["coin_id"] for r in cap] == [2, 3]

    # A newer snapshot with only three coins: three rows, shares still sum to 1.
    insert_listings(
        latest + timedelta(minutes=15), [(1, 10.0, 1.0), (2, 30.0, 3.0), (3, 60.0, 6.0)]
    )
    dbt("build", "--select", "cap_top_10", "vol_top_10")
    rows = query("select coin_id, share_of_top_10 from marts.cap_top_10 order by rank")
    assert [(r["coin_id"], round(r["share_of_top_10"], 9)) for r in rows] == [
        (3, 0.6),
        (2, 0.3),
        (1, 0.1),
    ]


def test_vol_top_10_ranks_the_markets_volume_listing_not_the_market_cap_top(
    dbt, insert_listings, query
) -> None:
    # The market-cap listing holds the big coins; coin 777 is small but trades the most, so
    # only CoinMarketCap's volume listing (sort=volume_24h over the whole market) has it.
    insert_listings(
        T0, [(i, 1000.0 - i, float(i)) for i in range(1, 13)], ranked_by=("market_cap",)
    )
    insert_listings(
        T0, [(777, 5.0, 1e9), (3, 997.0, 3.0), (2, 998.0, 2.0)], ranked_by=("volume_24h",)
    )
    dbt("build", "--select", "+cap_top_10", "+vol_top_10")

    vol = query("select rank, coin_id from marts.vol_top_10 order by rank")
    assert [(r["rank"], r["coin_id"]) for r in vol] == [(1, 777), (2, 3), (3, 2)]
    cap = query("select coin_id from marts.cap_top_10 order by rank")
    assert [r["coin_id"] for r in cap] == list(range(1, 11))  # 777 is no top-10 market cap


def test_top_10_completeness_allows_a_snapshot_that_landed_after_the_build_only(
    dbt, dbt_workdir, insert_listings, warehouse
) -> None:
    # The listings DAG runs beside the reference build: a snapshot that lands between the
    # marts' build and their tests is no error; one the build surely saw, and missed, is.
    insert_listings(T0, [(i, 1000.0 * i, 10.0 * i) for i in range(1, 13)])
    dbt("build", "--select", "+cap_top_10", "+vol_top_10")
    insert_listings(T0 + timedelta(minutes=15), [(i, 2000.0 * i, 5.0 * i) for i in range(1, 13)])
    test = ("test", "--select", "assert_top_10_marts_are_complete")
    result = dbt(*test, check=False)
    assert result.ok, result.output

    # The same marts, as if their build had begun after the new snapshot was committed.
    warehouse.execute(
        "update staging.incremental_state set safe_from = clock_timestamp()"
        " where model_name like '%top_10%'"
    )
    assert not dbt(*test, check=False).ok
    failures = run_results(dbt_workdir)["assert_top_10_marts_are_complete"]["failures"]
    assert failures == 2  # cap_top_10 and vol_top_10, each one snapshot behind

    # Built again, they hold the new snapshot and pass.
    dbt("build", "--select", "cap_top_10", "vol_top_10")
    assert dbt(*test, check=False).ok


def test_fx_rates_daily_adds_usd_and_flags_the_latest_date(dbt, insert_fx, query) -> None:
    insert_fx(date(2025, 1, 1), "EUR", 0.9)
    insert_fx(date(2025, 1, 2), "EUR", 0.95)
    insert_fx(date(2025, 1, 1), "SEK", 11.0, source="simulator")
    # The simulator's rate for a date the real provider has: kept in raw, never used.
    insert_fx(date(2025, 1, 2), "EUR", 0.5, source="simulator")
    dbt("build", "--select", "+fx_rates_daily")
    rows = query("select * from marts.fx_rates_daily order by currency, as_of_date")
    assert [
        (r["as_of_date"], r["currency"], r["rate_per_usd"], r["is_latest"], r["source"])
        for r in rows
    ] == [
        (date(2025, 1, 1), "EUR", 0.9, False, "frankfurter"),
        (date(2025, 1, 2), "EUR", 0.95, True, "frankfurter"),
        (date(2025, 1, 1), "SEK", 11.0, True, "simulator"),
        (date(2025, 1, 1), "USD", 1.0, False, "definition"),
        (date(2025, 1, 2), "USD", 1.0, True, "definition"),
    ]


def test_pipeline_health_has_a_row_per_raw_table_before_anything_loaded(dbt, warehouse, query):
    """The dashboard counts on it: it never probes the marts in ROWS_ONCE_BUILT for rows."""
    from streamlit_app.queries import ROWS_ONCE_BUILT

    # The fixture emptied the raw tables; the full refresh forgets earlier tests' counts.
    dbt("build", "--full-refresh", "--select", *QUOTES_SELECTION)

    for mart in ROWS_ONCE_BUILT:
        assert query(f"select count(*) as n from marts.{mart}")[0]["n"] > 0, mart
    rows = query("select source_name, source from marts.pipeline_health")
    assert sorted(r["source_name"] for r in rows) == [
        "crypto_listings",
        "crypto_quotes",
        "fx_rates",
    ]
    assert {r["source"] for r in rows} == {None}


def test_pipeline_health_reports_each_source_and_is_readable_by_the_dashboard(
    dbt, insert_quote, insert_listings, warehouse, query, pg
) -> None:
    now = datetime.now(UTC)
    insert_quote(1, 100.0, minute(0), loaded_at=now - timedelta(hours=2))  # too old
    insert_quote(1, 100.5, minute(1), loaded_at=now - timedelta(minutes=40))
    insert_quote(1, 100.7, minute(2), loaded_at=now - timedelta(minutes=5))
    # Full refresh: raw was emptied for this test, the counts of earlier tests' rows go too.
    dbt("build", "--full-refresh", "--select", *QUOTES_SELECTION)
    # What the build counted per minute (pipeline_health sums these)...
    counted = query(
        "select minute_at, rows_loaded from intermediate.int_loads_per_minute"
        " where source_name = 'crypto_quotes' and source = 'simulator' order by minute_at"
    )
    assert [r["rows_loaded"] for r in counted] == [1, 1, 1]
    assert counted[0]["minute_at"] == (now - timedelta(hours=2)).replace(second=0, microsecond=0)
    # ...and a view: rows loaded after the build still show. The switch to a real key: the
    # next quotes come from CoinMarketCap.
    insert_quote(1, 101.0, minute(3), source="coinmarketcap")
    insert_quote(1027, 3000.0, minute(3), source="coinmarketcap")
    insert_listings(T0, [(1, 10.0, 1.0), (2, 5.0, 1.0)], ranked_by=("market_cap",))
    warehouse.execute(
        "insert into raw.crypto_quotes_rejected (kafka_topic, kafka_partition, kafka_offset,"
        " reason) values ('crypto', 0, 7, 'not JSON')"
    )
    warehouse.execute(
        "insert into raw.crypto_listings_rejected (source, snapshot_at, quote_currency, payload,"
        " reason) values ('coinmarketcap', now(), 'USD', '{}', 'price is not a number')"
    )

    def health() -> dict:
        with psycopg.connect(pg.dashboard_db_url, autocommit=True) as dashboard:
            rows = dashboard.execute(
                "select source_name, source, is_current, last_loaded_at, rows_last_hour,"
                " rejected_last_hour, quarantined_last_hour, status, status_reason"
                " from marts.pipeline_health"
            ).fetchall()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                dashboard.execute("select 1 from raw.crypto_quotes")
        return {(r[0], r[1]): r[2:] for r in rows}

    def check(by_source: dict) -> None:
        assert set(by_source) == {
            ("crypto_quotes", "coinmarketcap"),
            ("crypto_quotes", "simulator"),
            ("crypto_listings", "coinmarketcap"),
            ("fx_rates", None),
        }
        real = by_source[("crypto_quotes", "coinmarketcap")]
        assert real[0] is True and real[2:5] == (2, 1, 0)
        # Fresh, but a message was refused in the last hour: a warning that says so.
        assert real[5] == "warn" and "refused" in real[6]
        simulated = by_source[("crypto_quotes", "simulator")]
        assert simulated[0] is False and simulated[2:5] == (2, 0, 0)
        assert simulated[1] == now - timedelta(minutes=5)
        assert simulated[5] == "inactive" and "not the current source" in simulated[6]
        listings = by_source[("crypto_listings", "coinmarketcap")]
        assert listings[0] is True and listings[2:4] == (2, 1)
        assert listings[5] == "warn" and "raw.crypto_listings_rejected" in listings[6]
        # No FX rates: optional, so a warning that says what it means, not an error.
        fx = by_source[("fx_rates", None)]
        assert fx[1:5] == (None, 0, 0, 0)
        assert fx[5] == "warn" and "no FX rates loaded yet" in fx[6]

    try:
        check(health())
        # After the next build (it counts the new minutes), the same figures.
        dbt("build", "--select", *QUOTES_SELECTION)
        check(health())
    finally:
        # The shared warehouse fixture empties the four main raw tables only.
        warehouse.execute("delete from raw.crypto_listings_rejected")


def test_dbt_build_exits_non_zero_when_a_data_test_fails(dbt, insert_listings, warehouse) -> None:
    insert_listings(T0, [(1, 10.0, 1.0)])
    warehouse.execute(
        "update raw.crypto_listings set coin = jsonb_set(coin, '{quote,USD,price}', '-5')"
    )
    result = dbt("build", "--select", "stg_crypto_listings+", check=False)
    assert result.returncode != 0
    assert "positive_stg_crypto_listings_price" in result.output
    with pytest.raises(DbtError, match="failed"):
        dbt("build", "--select", "stg_crypto_listings")


def test_per_build_tests_check_recent_rows_and_the_audit_checks_all_history(
    dbt, insert_quote, warehouse, dbt_workdir
) -> None:
    now = datetime.now(UTC)
    insert_quote(1, 100.0, minute(0), loaded_at=now)
    insert_quote(1027, 2900.0, minute(-120), loaded_at=now - timedelta(hours=3))
    insert_quote(1027, 3000.0, minute(2), loaded_at=now)
    dbt("build", "--full-refresh", "--exclude", "tag:audit")
    # A bad row in the mart (as a bug would leave it) written long before the per-build window
    # (var recent_test_window), in an hour of its own; the coin's newer quote keeps it out of
    # latest_quotes and the current hour of coin_price_hourly.
    warehouse.execute(
        "update marts.quotes_coins set price = -5, transformed_at = %s"
        " where coin_id = 1027 and last_updated_at = %s",
        (now - timedelta(hours=3), minute(-120)),
    )

    # The per-minute build's selection: its tests only look at recent rows, so it passes...
    dbt("build", "--exclude", "tag:audit")
    results = run_results(dbt_workdir)
    assert results["is_null_stg_crypto_quotes_invalid_reason"]["status"] == "pass"
    assert results["positive_quotes_coins_price"]["status"] == "pass"
    assert not {name for name in results if name.startswith("assert_quotes")}
    assert "unique_quotes_coins_quote_key" not in results

    # ...and the daily audit, over all history, finds the row.
    result = dbt("test", "--select", "tag:audit", check=False)
    assert result.returncode == 1
    results = run_results(dbt_workdir)
    assert results["assert_quotes_marts_rows_are_valid"]["status"] == "fail"
    assert results["assert_quotes_coins_matches_full_refresh"]["status"] == "fail"
    assert results["unique_quotes_coins_quote_key"]["status"] == "pass"


def test_marts_have_the_indexes_the_incremental_builds_rely_on(dbt, insert_quote, query) -> None:
    insert_quote(1, 100.0, minute(0), loaded_at=datetime.now(UTC))
    dbt(
        "run",
        "--full-refresh",
        "--select",
        "+latest_quotes",
        "+coin_price_hourly",
        "int_loads_per_minute",
    )
    indexes = {
        (r["tablename"], r["indexdef"].split(" USING btree ")[1])
        for r in query(
            "select tablename, indexdef from pg_indexes"
            " where schemaname in ('marts', 'intermediate')"
            " and tablename in ('quotes_coins', 'coin_price_hourly', 'latest_quotes',"
            " 'int_loads_per_minute')"
        )
    }
    unique = {
        (r["tablename"], r["indexdef"].split(" USING btree ")[1])
        for r in query(
            "select tablename, indexdef from pg_indexes"
            " where schemaname in ('marts', 'intermediate')"
            " and indexdef like 'CREATE UNIQUE INDEX%%'"
        )
    }
    # The keys (source is in each) are enforced by the tables, not only by the (audit) tests.
    assert ("quotes_coins", "(quote_key)") in unique
    assert ("quotes_coins", "(source, coin_id, quote_currency, last_updated_at)") in unique
    assert ("coin_price_hourly", "(source, coin_id, quote_currency, hour_at)") in unique
    assert ("latest_quotes", "(source, coin_id, quote_currency)") in unique
    # pipeline_health's per-source minute ranges, and the incremental's replace key.
    assert ("int_loads_per_minute", "(source_name, source, minute_at)") in unique
    # The incremental lookups: rows dbt wrote since a safe point, an hour's quotes by a range,
    # and the per-build tests' recent window on coin_price_hourly.
    assert ("quotes_coins", "(transformed_at)") in indexes
    assert ("coin_price_hourly", "(last_loaded_at)") in indexes


def test_source_freshness_warns_then_errors(
    dbt, insert_quote, insert_listings, insert_fx, warehouse
) -> None:
    now = datetime.now(UTC)
    insert_listings(T0, [(1, 10.0, 1.0)], loaded_at=now)
    insert_fx(now.date() - timedelta(days=1), "EUR", 0.9, loaded_at=now)
    insert_quote(1, 100.0, minute(0), loaded_at=now - timedelta(minutes=10))  # past warn (5 min)
    result = dbt("source", "freshness", check=False)
    assert result.returncode == 0, result.output
    assert "WARN" in result.output
    assert check_source_freshness() == "fresh (warnings: crypto_quotes: warn)"

    warehouse.execute("update raw.crypto_quotes set loaded_at = %s", (now - timedelta(hours=1),))
    result = dbt("source", "freshness", check=False)
    assert result.returncode != 0
    with pytest.raises(DbtError, match=r"error_after.*crypto_quotes: error"):
        check_source_freshness()


def test_fx_freshness_follows_the_rates_own_date_and_is_optional(
    dbt, insert_quote, insert_listings, insert_fx, warehouse, query
) -> None:
    now = datetime.now(UTC)
    insert_listings(T0, [(1, 10.0, 1.0)])
    insert_quote(1, 100.0, minute(0))
    # No FX rates at all (the FX API unreachable since the install): a warning, not a failure.
    assert check_source_freshness().startswith("fresh (warnings: fx_rates: ")
    dbt("build", "--select", *QUOTES_SELECTION, *REFERENCE_SELECTION)
    fx = query("select * from marts.pipeline_health where source_name = 'fx_rates'")
    assert [(r["source"], r["status"]) for r in fx] == [(None, "warn")]

    # Rates of ten days ago, upserted just now: stale by their own date, whatever loaded_at.
    insert_fx(now.date() - timedelta(days=10), "EUR", 0.9, loaded_at=now)
    result = dbt("source", "freshness", "--select", "source:raw.fx_rates", check=False)
    assert result.returncode == 1 and "ERROR STALE freshness of raw.fx_rates" in result.output
    assert check_source_freshness() == "fresh (warnings: fx_rates: error)"
    fx = query("select * from marts.pipeline_health where source_name = 'fx_rates'")
    assert [(r["source"], r["is_current"], r["status"]) for r in fx] == [
        ("frankfurter", True, "error")
    ]
    assert fx[0]["newest_data_at"] == datetime.combine(
        now.date() - timedelta(days=10), datetime.min.time(), UTC
    )
    assert "the newest FX rates are of" in fx[0]["status_reason"]
    # fx_rates_daily keeps its columns (the dashboard converts each point at its own date).
    dbt("build", "--select", "fx_rates_daily")
    rows = query("select * from marts.fx_rates_daily where currency = 'EUR'")
    assert {"as_of_date", "currency", "rate_per_usd", "is_latest"} <= set(rows[0])

    # Yesterday's rates: fresh again (a weekend or holiday may leave them up to 4 days old).
    insert_fx(now.date() - timedelta(days=1), "EUR", 0.91, loaded_at=now - timedelta(days=3))
    result = dbt("source", "freshness", "--select", "source:raw.fx_rates", check=False)
    assert result.returncode == 0, result.output
    fx = query("select status from marts.pipeline_health where source_name = 'fx_rates'")
    assert [r["status"] for r in fx] == ["ok"]
