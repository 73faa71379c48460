"""AppTest tests: every number on the page is right, or the page says why not (issue 13).

Each test starts from ``fill_small``'s marts in the real test Postgres, changes them the way real
data or a real operator does (a stalled coin, a switched source or quote currency, a shared
ticker, a sub-cent coin, week-old FX rates) and reads the page as a person would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.dashboard import marts_data
from tests.dashboard.test_app import (
    figures,
    hours_in_last_day,
    metric,
    page_text,
    run_app,
    sparkline_points,
    values,
)

pytestmark = pytest.mark.integration

CMC = "coinmarketcap"


@pytest.fixture
def marts(loader) -> Iterator[marts_data.SmallData]:
    """``fill_small``'s marts for this test alone (the test changes them)."""
    data = marts_data.fill_small(loader)
    yield data
    marts_data.drop_marts(loader)


def copy_rows(loader, table: str, where: str, **changes: object) -> None:
    """Insert copies of the rows of ``marts.table`` matching ``where`` with ``changes`` set
    (values are SQL expressions over the row, so ``price="price * 2"`` works)."""
    columns = [
        r[0]
        for r in loader.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name = %s order by ordinal_position",
            (table,),
        )
    ]
    select = ", ".join(str(changes.get(c, c)) for c in columns)
    loader.execute(f"insert into marts.{table} select {select} from marts.{table} where {where}")


# -- D: per-coin age and staleness -------------------------------------------------------------


def test_app_marks_a_stale_coin_and_does_not_preselect_it(marts, loader, dashboard_env):
    # SOL stopped being tracked two hours ago: its newest row is that old.
    loader.execute(
        "update marts.latest_quotes set fetched_at = now() - interval '2 hours', "
        "loaded_at = now() - interval '2 hours' where coin_id = 5426"
    )
    at = run_app()

    assert not at.exception
    assert at.multiselect(key="coins").value == [1, 1027]
    assert "SOL · Solana · stale" in at.multiselect(key="coins").options
    at.multiselect(key="coins").set_value([1, 5426]).run()
    assert "stale · fetched 2 h ago: no newer quote (older than 300 s)" in page_text(at)
    # Each fresh coin shows its own age, from the pipeline's stamp (fetched 38 s before "now").
    assert any(re.fullmatch(r"Quote fetched \d+ s ago", c.value) for c in at.caption)


def test_app_stale_threshold_is_a_setting(marts, loader, dashboard_env, monkeypatch):
    monkeypatch.setenv("MOONWATCH_STALE_AFTER_SECONDS", "10")
    at = run_app()  # every quote was fetched ~38 s ago: all stale
    # The pipeline has stopped: the default coins' last prices, each card marked stale.
    assert at.multiselect(key="coins").value == [1, 1027, 5426]
    assert page_text(at).count("no newer quote (older than 10 s)") == 3, page_text(at)


def test_app_converts_each_amount_from_its_own_rows_currency(marts, loader, dashboard_env):
    # MOONWATCH_QUOTE_CURRENCY changed to EUR: BTC has a fresh EUR row (50,000 EUR) and its
    # old USD row froze an hour ago; the top-10 snapshots now come in EUR.
    loader.execute(
        "update marts.latest_quotes set fetched_at = now() - interval '1 hour', "
        "loaded_at = now() - interval '1 hour' where coin_id = 1"
    )
    copy_rows(
        loader,
        "latest_quotes",
        "coin_id = 1",
        quote_currency="'EUR'",
        price="50000",
        market_cap="market_cap * 50000 / price",
        fetched_at="now() - interval '10 seconds'",
        loaded_at="now() - interval '8 seconds'",
    )
    for table in ("cap_top_10", "vol_top_10"):
        loader.execute(f"update marts.{table} set quote_currency = 'EUR'")
    btc = marts.coins["BTC"]

    at = run_app()
    assert not at.exception
    assert metric(at, "BTC price").value == "$54,347.83"  # 50,000 EUR / 0.92, not the old row
    assert metric(at, "ETH price").value == "$3,000.00"  # still quoted in USD
    *_, donut, bars = figures(at)
    # The EUR snapshot converts at its own day's rate (yesterday's just after midnight).
    top_rate = marts_data.eur_rate_at(marts, marts.now - marts_data.TOP_10_AGE)
    assert values(donut["data"][0]["values"])[0] == pytest.approx(btc.market_cap / top_rate)

    at.segmented_control(key="currency").set_value("EUR").run()
    assert metric(at, "BTC price").value == "€50,000.00"  # already EUR: converted once, never
    assert metric(at, "ETH price").value == "€2,760.00"
    *_, donut, bars = figures(at)
    assert values(donut["data"][0]["values"])[0] == pytest.approx(btc.market_cap)
    btc_bar = list(bars["data"][0]["x"]).index("BTC")
    assert values(bars["data"][0]["y"])[btc_bar] == pytest.approx(btc.volume_24h)


# -- E: the header's freshness -----------------------------------------------------------------


def test_app_badge_follows_the_pipeline_not_a_2099_source_time(marts, loader, dashboard_env):
    # The pipeline stalled two hours ago; a row's source time claims 2099.
    loader.execute(
        "update marts.latest_quotes set fetched_at = now() - interval '2 hours', "
        "loaded_at = now() - interval '2 hours'"
    )
    loader.execute(
        "update marts.latest_quotes set last_updated_at = '2099-01-01T00:00:00Z' where coin_id = 1"
    )
    text = page_text(run_app())
    assert ":red-badge[:material/schedule: updated 2 h ago]" in text


# -- F: one source on the page -----------------------------------------------------------------


def test_app_shows_only_the_active_source_after_the_switch(marts, loader, dashboard_env):
    # A real key was set: BTC and ETH now come from CoinMarketCap, newer than any simulated row.
    real = {
        "source": f"'{CMC}'",
        "is_simulated": "false",
        "price": "price * 1.5",
        "fetched_at": "now() - interval '5 seconds'",
        "loaded_at": "now() - interval '3 seconds'",
    }
    copy_rows(loader, "latest_quotes", "coin_id in (1, 1027)", **real)
    copy_rows(
        loader,
        "quotes_coins",
        "coin_id in (1, 1027) and last_updated_at > now() - interval '15 minutes'",
        **real,
        last_updated_at="last_updated_at + interval '1 second'",
    )
    hour0 = marts.newest_update.replace(minute=0, second=0)
    copy_rows(
        loader,
        "coin_price_hourly",
        f"coin_id in (1, 1027) and hour_at >= '{(hour0 - timedelta(hours=2)).isoformat()}'",
        source=f"'{CMC}'",
        close_price="close_price * 1.5",
    )
    copy_rows(loader, "cap_top_10", "true", source=f"'{CMC}'", is_simulated="false")

    at = run_app()
    assert not at.exception
    text = page_text(at)
    assert "live · CoinMarketCap" in text and "SIMULATED DATA" not in text
    assert (
        "The warehouse also holds 4 coins of simulated data from before the switch; not shown."
        in text
    )
    assert at.multiselect(key="coins").options == ["BTC · Bitcoin", "ETH · Ethereum"]
    assert metric(at, "BTC price").value == "$90,000.00"
    price, *pct, _donut = figures(at)
    # Only the real hours and quotes: no simulated point in any line.
    assert [len(t["x"]) for t in price["data"]] == [3, 3]
    assert {len(t["x"]) for t in pct[0]["data"]} == {2}  # the two newest real quotes per coin
    assert "`marts.vol_top_10` has no CoinMarketCap rows yet" in text


def test_app_keeps_two_coins_with_one_ticker_apart(marts, loader, dashboard_env):
    # Another coin calls itself SOL (CoinMarketCap lists many coins per ticker).
    twin = {"coin_id": "31337", "name": "'Solana Classic'", "price": "price / 100"}
    copy_rows(loader, "latest_quotes", "coin_id = 5426", **twin, cmc_rank="50")
    copy_rows(loader, "quotes_coins", "coin_id = 5426", **twin, cmc_rank="50")
    copy_rows(
        loader,
        "coin_price_hourly",
        "coin_id = 5426",
        coin_id="31337",
        name="'Solana Classic'",
        close_price="close_price / 100",
    )
    at = run_app()
    at.multiselect(key="coins").set_value([5426, 31337]).run()

    assert not at.exception
    assert [m.label for m in at.metric if m.label.endswith(" price")] == [
        "SOL · Solana price",
        "SOL · Solana Classic price",
    ]
    price, pct_1h, *_ = figures(at)
    names = ["SOL · Solana", "SOL · Solana Classic"]
    assert [t["type"] for t in price["data"]] == ["scatter", "scatter"]  # not one candlestick
    assert [t["name"] for t in price["data"]] == names
    assert [t["name"] for t in pct_1h["data"]] == names
    assert price["data"][0]["line"]["color"] != price["data"][1]["line"]["color"]


# -- B: numbers a trader can read ---------------------------------------------------------------


def test_app_shows_sub_cent_prices_and_big_caps_without_exponents(marts, loader, dashboard_env):
    loader.execute(
        "update marts.latest_quotes set price = 0.00000123, market_cap = 999999999 "
        "where coin_id = 74"
    )
    at = run_app()
    at.multiselect(key="coins").set_value([74]).run()

    assert not at.exception
    assert metric(at, "DOGE price").value == "$0.000001230"
    assert metric(at, "Market cap").value == "$1.00 B"
    shown = [f"{m.value} {m.delta}" for m in at.metric]
    assert not [s for s in shown if re.search(r"\de-\d", s)], shown
    assert metric(at, "Change 1h").value == "+$0.000000001229"


def test_app_sparkline_covers_the_last_24_hours_not_24_rows(marts, loader, dashboard_env):
    # Twelve hours of the last day are missing for BTC.
    hour0 = marts.newest_update.replace(minute=0, second=0)
    loader.execute(
        "delete from marts.coin_price_hourly where coin_id = 1 and hour_at between %s and %s",
        (hour0 - timedelta(hours=12), hour0 - timedelta(hours=1)),
    )
    left = [hour0 - timedelta(hours=h) for h in range(49) if not 1 <= h <= 12]
    before = datetime.now(UTC)
    at = run_app()
    after = datetime.now(UTC)
    # The first headline card is BTC's (by rank); its sparkline is the first one on the page.
    btc = next(
        e.value
        for k in ("html", "markdown")
        for e in at.get(k)
        if "<svg" in e.value or "data:image/svg" in e.value
    )
    points = sparkline_points(btc)
    # 12 of the last 24 hours remain (11 once the clock is an hour past the fixture's).
    assert len(points) in hours_in_last_day(left, before, after)


# -- G: each day at its own rate; FX freshness by the rates' date -----------------------------


def test_app_fx_health_follows_the_rates_own_date(marts, loader, dashboard_env):
    # The rates were upserted a minute ago, but the newest of them is ten days old.
    loader.execute("update marts.fx_rates_daily set as_of_date = as_of_date - 10")
    loader.execute(
        "update marts.pipeline_health set last_loaded_at = now() - interval '1 minute', "
        "rejected_last_hour = 0 where source_name = 'fx_rates'"
    )
    before = datetime.now(UTC)
    at = run_app()
    after = datetime.now(UTC)

    assert not at.exception
    fx = next(m for m in at.metric if m.label.startswith("FX rates"))
    day = marts.now.date() - timedelta(days=10)
    # Ten days old by the page's clock (eleven, should midnight have passed since the fixture).
    ages = {(t.date() - day).days for t in (before, after)}
    assert fx.value in {f"rates of {day} ({age} d old)" for age in ages}
    assert any("stale" in c.value for c in at.caption)


def test_app_shows_the_current_sources_health_and_the_marts_verdict(marts, loader, dashboard_env):
    # pipeline_health split by data source, each row judged by the mart itself.
    loader.execute("drop table marts.pipeline_health")
    loader.execute(
        "create table marts.pipeline_health (source_name text, source text, is_current boolean,"
        " last_loaded_at timestamptz, rows_last_hour bigint, rejected_last_hour bigint,"
        " status text, status_reason text)"
    )
    loader.execute(
        "insert into marts.pipeline_health values"
        " ('crypto_quotes', 'simulator', true, now(), 240, 0, 'ok', null),"
        " ('crypto_quotes', 'coinmarketcap', false, now() - interval '1 day', 0, 0,"
        "  'inactive', 'not the current source'),"
        " ('crypto_listings', null, null, null, 0, 0, 'warn', 'nothing loaded yet'),"
        " ('fx_rates', 'simulator', true, now(), 6, 0, 'warn',"
        "  'the newest FX rates are of 2026-01-01, older than 4 days')"
    )
    at = run_app()

    assert not at.exception
    cards = [m.label for m in at.metric if "·" in m.label and "`" in m.label]
    assert cards == [
        "Quotes · `crypto_quotes`",
        "Listings · `crypto_listings`",
        "FX rates · `fx_rates`",
    ]
    captions = [c.value for c in at.caption]
    assert ":orange[nothing loaded yet]" in captions
    assert any(c.startswith(":orange[the newest FX rates are of 2026\\-01\\-01") for c in captions)


def test_app_explains_a_mart_built_by_an_older_dbt_project(marts, loader, dashboard_env):
    loader.execute("alter table marts.coin_price_hourly drop column source")
    at = run_app()

    assert not at.exception and not at.error
    assert metric(at, "BTC price").value == "$60,000.00"
    assert any("was built by an older version of the dbt project" in i.value for i in at.info)


# -- H: every table and chart downloads as CSV in the selected currency -------------------------


def test_app_offers_each_table_and_chart_as_csv_in_the_selected_currency(marts, dashboard_env):
    at = run_app()
    at.segmented_control(key="currency").set_value("SEK").run()

    buttons = {b.proto.label: b.proto for b in at.get("download_button")}
    assert sorted(buttons) == [
        "Hourly prices as CSV (SEK)",
        "Percent changes and prices as CSV (SEK)",
        "These quotes as CSV (SEK)",
        "Top 10 by 24h volume as CSV (SEK)",
        "Top 10 by market cap as CSV (SEK)",
    ]
