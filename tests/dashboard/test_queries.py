"""The dashboard's cached queries against the real test Postgres, as the read-only role."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import psycopg
import pytest
from sqlalchemy.engine import make_url

from moonwatch import settings as settings_module
from moonwatch.errors import ConfigurationError
from moonwatch.settings import Settings
from streamlit_app import queries
from tests.dashboard import marts_data

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://u:p%40ss@127.0.0.1:5432/db",
        "postgres://u:p%40ss@127.0.0.1:5432/db",
        "postgresql+psycopg2://u:p%40ss@127.0.0.1:5432/db",
    ],
)
def test_to_sqlalchemy_url_picks_psycopg3(raw):
    url = make_url(queries.to_sqlalchemy_url(raw))
    assert url.drivername == "postgresql+psycopg"
    assert url.password == "p@ss"


def test_to_sqlalchemy_url_refuses_garbage_without_echoing_it():
    with pytest.raises(ConfigurationError, match="MOONWATCH_DASHBOARD_DB_URL") as info:
        queries.to_sqlalchemy_url("not a url with s3cr3t")
    assert "s3cr3t" not in str(info.value)
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        queries.to_sqlalchemy_url("mysql://u:p@h/db")


def test_describe_target_hides_the_password():
    assert (
        queries.describe_target("postgresql://reader:s3cr3t@db.example:6543/moonwatch")
        == "reader@db.example:6543/moonwatch"
    )


REFRESH = "MOONWATCH_DASHBOARD_REFRESH_SECONDS"
STALE = "MOONWATCH_STALE_AFTER_SECONDS"


@pytest.mark.parametrize(
    ("name", "read", "default"),
    [(REFRESH, queries.refresh_seconds, 30), (STALE, queries.stale_after_seconds, 300)],
)
def test_dashboard_seconds_come_from_the_settings(monkeypatch, name, read, default):
    monkeypatch.delenv(name, raising=False)
    assert read() == default
    monkeypatch.setenv(name, "")  # what docker-compose passes for an unset variable
    assert read() == default
    monkeypatch.setenv(name, "90")
    assert read() == 90


@pytest.mark.parametrize(
    ("name", "read", "value", "problem"),
    [
        (REFRESH, queries.refresh_seconds, "1", "greater than or equal to 5"),
        (REFRESH, queries.refresh_seconds, "soon", "a valid integer"),
        (STALE, queries.stale_after_seconds, "0", "greater than or equal to 1"),
    ],
)
def test_a_bad_dashboard_setting_is_a_clear_error(monkeypatch, name, read, value, problem):
    # Before: a typo or a too small value was quietly replaced (a warning in the log at best).
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=f"{name}: Input should be {problem}"):
        read()


def test_the_page_reads_the_settings_again_only_when_the_environment_changed(monkeypatch):
    # Pydantic's read costs about a millisecond, and the page asked for it once per query.
    reads = []
    monkeypatch.setattr(settings_module, "load_settings", lambda: reads.append(1) or Settings())
    monkeypatch.setenv("MOONWATCH_TEST_NONCE", str(id(reads)))  # an environment not seen yet
    monkeypatch.delenv(REFRESH, raising=False)  # its default, whatever the shell exports
    monkeypatch.setenv(STALE, "120")
    assert [queries.stale_after_seconds() for _ in range(3)] == [120] * 3
    assert queries.refresh_seconds() == 30 and len(reads) == 1
    monkeypatch.setenv(STALE, "90")
    assert queries.stale_after_seconds() == 90 and len(reads) == 2
    monkeypatch.setenv(STALE, "120")  # back to one it has read
    assert queries.stale_after_seconds() == 120 and len(reads) == 2


SIM = "simulator"


def test_mart_status_and_latest_quotes(small_marts, dashboard_env):
    db = queries.database_key()
    status = queries.mart_status(db)
    assert status["exists"].all() and status["has_rows"].all()
    # The picker's list: every coin of the source, narrow, by rank.
    coins = queries.coins(db, source=SIM)
    assert list(coins.columns) == ["coin_id", "symbol", "name", "quote_currency", "stamped_at"]
    assert coins["symbol"].tolist() == ["BTC", "ETH", "SOL", "DOGE"]
    assert coins["coin_id"].tolist() == [1, 1027, 5426, 74]
    assert queries.coins(db, source="coinmarketcap").empty
    # The header's figures, per source: the newest time the pipeline stamped.
    summary = queries.sources(db)
    assert summary["source"].tolist() == [SIM]
    assert summary.at[0, "stamped_at"] == small_marts.newest_update + timedelta(seconds=2)
    assert summary.at[0, "coins"] == 4 and bool(summary.at[0, "is_simulated"])
    # Full quotes of the picked coins only, by rank.
    latest = queries.latest_quotes(db, (5426, 1), source=SIM)
    assert latest["symbol"].tolist() == ["BTC", "SOL"]
    assert latest["price"].dtype == float
    assert latest.loc[0, "price"] == 60000.0
    assert queries.latest_quotes(db, (1,), source="coinmarketcap").empty
    assert queries.latest_quotes(db, (), source=SIM).empty


def test_mart_status_probes_tables_for_rows_but_not_the_health_view(monkeypatch):
    """pipeline_health has a row per raw table once built (tests/dbt checks the view), so the
    empty-state note never computes it; every other mart is probed."""
    probed = []

    def fake_read(sql: str, params: dict | None = None, *, table: str) -> pd.DataFrame:
        if table == "(catalog)":
            return pd.DataFrame({"table_name": [t for t in queries.MARTS if t != "vol_top_10"]})
        probed.append(table)
        return pd.DataFrame({"has_rows": [table == "latest_quotes"]})

    monkeypatch.setattr(queries, "_read", fake_read)
    status = queries.mart_status("fake-db-key").set_index("table")

    assert set(probed) == set(queries.MARTS) - {"vol_top_10", "pipeline_health"}
    assert bool(status.at["pipeline_health", "has_rows"]) is True
    assert bool(status.at["latest_quotes", "has_rows"]) is True
    assert bool(status.at["quotes_coins", "has_rows"]) is False
    assert not status.at["vol_top_10", "exists"] and not status.at["vol_top_10", "has_rows"]


def test_top_10_reads_only_the_newest_snapshot(small_marts, dashboard_env):
    cap = queries.top_10(queries.database_key(), "cap_top_10", source=SIM)
    assert cap["rank"].tolist() == list(range(1, 11))
    assert cap["snapshot_at"].nunique() == 1
    assert cap.loc[0, "market_cap"] == small_marts.coins["BTC"].market_cap


def test_fx_rates_hold_each_days_rate(small_marts, dashboard_env):
    rates = queries.fx_rates(queries.database_key())
    newest = rates.sort_values("as_of_date").groupby("currency").last()["rate_per_usd"]
    assert newest.to_dict() == small_marts.rates
    eur = rates[rates["currency"] == "EUR"].sort_values("as_of_date")["rate_per_usd"]
    assert eur.tolist() == [0.5, 0.92]  # yesterday's and today's


def test_quote_history_and_hourly_prices_cover_the_selected_coins(small_marts, dashboard_env):
    db = queries.database_key()
    history = queries.quote_history(db, (1, 1027), source=SIM)
    assert set(history["coin_id"]) == {1, 1027}
    assert len(history) == 12  # six quotes per coin, each in its own one-minute bucket
    hourly = queries.price_hourly(db, (5426,), source=SIM)
    assert set(hourly["coin_id"]) == {5426} and len(hourly) == 49
    assert queries.quote_history(db, (), source=SIM).empty
    assert queries.price_hourly(db, (5426,), source="coinmarketcap").empty


def test_quote_history_averages_a_long_history_into_the_page_points(
    small_marts, loader, dashboard_env
):
    """40 days of quotes every 10 minutes and one from a wrong clock an hour ahead: the page
    gets at most MAX_POINTS_PER_COIN points of the last HISTORY_DAYS before the newest real
    quote, each the mean of its quotes, and nothing of the future one."""
    coin = 424242
    loader.execute(
        "insert into marts.quotes_coins (coin_id, quote_currency, source, last_updated_at, "
        "price, percent_change_1h, percent_change_24h, percent_change_7d, percent_change_30d) "
        "select %(coin)s, 'USD', %(source)s, now() - make_interval(mins => 10 * i), i, -i, "
        "0, 0, 0 from generate_series(1, 40 * 144) as i "
        "union all select %(coin)s, 'USD', %(source)s, now() + interval '1 hour', 1e9, 0, 0, "
        "0, 0",
        {"coin": coin, "source": SIM},
    )
    try:
        history = queries.quote_history(queries.database_key(), (coin,), source=SIM)
    finally:
        loader.execute("delete from marts.quotes_coins where coin_id = %s", (coin,))
    # The window: quote i is 10 * i minutes old, the newest (i = 1) ends it.
    in_window = [i for i in range(1, 40 * 144 + 1) if 10 * (i - 1) <= queries.HISTORY_DAYS * 1440]
    assert 1000 < len(history) <= queries.MAX_POINTS_PER_COIN
    assert history["samples"].sum() == len(in_window)  # the future quote is not among them
    assert (history["price"] * history["samples"]).sum() == pytest.approx(sum(in_window))
    assert history["percent_change_1h"].equals(-history["price"])
    assert history["last_updated_at"].is_monotonic_increasing
    assert history["price"].max() < 1e9


def test_pipeline_health(small_marts, dashboard_env):
    health = queries.pipeline_health(queries.database_key())
    assert set(health["source_name"]) == {"crypto_quotes", "crypto_listings", "fx_rates"}


def test_the_dashboard_role_cannot_read_raw(small_marts, dashboard_env):
    with pytest.raises(queries.MartAccessError, match="may not read"):
        queries._read("select * from raw.crypto_quotes limit 1", table="raw.crypto_quotes")


def test_missing_mart_is_reported_as_missing(loader, dashboard_env):
    loader.execute("drop table if exists marts.pipeline_health")
    with pytest.raises(queries.MartMissingError) as info:
        queries.pipeline_health(queries.database_key())
    assert info.value.table == "pipeline_health"


def test_unreachable_database_names_the_setting(
    monkeypatch, clear_streamlit_caches, unreachable_url
):
    monkeypatch.setenv("MOONWATCH_DASHBOARD_DB_URL", unreachable_url)
    with pytest.raises(queries.DatabaseUnavailableError) as info:
        queries.coins(queries.database_key(), source=SIM)
    message = str(info.value)
    assert "MOONWATCH_DASHBOARD_DB_URL" in message and "make status" in message
    assert make_url(unreachable_url).password not in message


def test_coins_and_sources_of_an_empty_mart(loader, dashboard_env):
    marts_data.create_marts(loader, ("latest_quotes",))
    db = queries.database_key()
    assert queries.coins(db, source=SIM).empty
    assert list(queries.coins(db, source=SIM).columns) == list(queries._COIN_COLUMNS)
    assert queries.sources(db).empty
    marts_data.drop_marts(loader)


def test_a_query_refuses_something_that_is_not_a_source(small_marts, dashboard_env):
    # A currency where the source belongs would match no row, silently: it must fail loudly.
    with pytest.raises(ValueError, match="not a data source: 'USD'"):
        queries.latest_quotes(queries.database_key(), (1,), source="USD")
    with pytest.raises(TypeError):
        queries.latest_quotes(queries.database_key(), (1,), "simulator")  # keyword only


def test_a_mart_without_a_column_the_page_needs_is_outdated(loader, dashboard_env):
    # coin_price_hourly as an older dbt project built it: no `source` column yet.
    marts_data.fill_small(loader)
    loader.execute("alter table marts.coin_price_hourly drop column source")
    try:
        with pytest.raises(queries.MartOutdatedError, match="older version of the dbt project"):
            queries.price_hourly(queries.database_key(), (1,), source=SIM)
    finally:
        marts_data.drop_marts(loader)


def test_for_source_keeps_the_current_rows_of_a_split_pipeline_health():
    health = pd.DataFrame(
        {
            "source_name": ["crypto_quotes", "crypto_quotes", "fx_rates", "crypto_listings"],
            "source": ["simulator", "coinmarketcap", "frankfurter", None],
            "is_current": [False, True, True, None],
        }
    )
    kept = queries.for_source(health, "coinmarketcap")
    assert kept.index.tolist() == [1, 2, 3]
    # Without is_current: the shown source's rows (and those of no source).
    kept = queries.for_source(health.drop(columns="is_current"), "simulator")
    assert kept.index.tolist() == [0, 3]
    unsplit = health.drop(columns=["source", "is_current"])
    assert len(queries.for_source(unsplit, "simulator")) == 4


def test_dashboard_sessions_are_read_only_bounded_and_without_jit(dashboard_env):
    """JIT compile time made pipeline_health 0.3 s at 1M raw rows and 4.7 s at 10M (0.06 s
    without it): the page's sessions turn it off, whatever the server's default."""
    from sqlalchemy import text

    with queries.connection().connect() as conn:
        settings = {
            name: conn.execute(text(f"show {name}")).scalar_one()
            for name in ("jit", "default_transaction_read_only", "statement_timeout")
        }
    assert settings == {
        "jit": "off",
        "default_transaction_read_only": "on",
        "statement_timeout": "15s",
    }


def test_dashboard_reads_results_in_binary(small_marts, dashboard_env):
    """The page's cursors ask for binary results (text parsing was half of the history's
    read), and the values come back the same types as from text."""
    from sqlalchemy import text

    with queries.connection().connect() as conn:
        result = conn.execute(
            text("select 1.5::float8, now(), 'x'::text, 2::int, 3::numeric, true, null::int")
        )
        assert result.cursor.format == psycopg.pq.Format.BINARY
        number, stamp, word, count, exact, flag, nothing = result.one()
    assert (number, word, count, exact, flag, nothing) == (1.5, "x", 2, 3, True, None)
    assert stamp.tzinfo is not None
