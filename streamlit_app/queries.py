"""All of the dashboard's data access: cached, read-only queries on schema ``marts``.

The connection is ``st.connection(..., type="sql")`` on MOONWATCH_DASHBOARD_DB_URL (the
read-only dashboard role). Every query function is ``st.cache_data`` with ``ttl`` equal to the
page's refresh interval (MOONWATCH_DASHBOARD_REFRESH_SECONDS, default 30), so one refresh costs
at most one round of queries however many people watch the page, and a widget change (coin,
currency) is answered from the cache. Driver errors become :class:`DashboardError` subclasses
whose messages say what to do and never contain the password.
"""

from __future__ import annotations

import logging
import os
from decimal import Decimal

import pandas as pd
import streamlit as st
from sqlalchemy import text
from sqlalchemy.engine import Result, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from moonwatch.errors import ConfigurationError, MoonwatchError, TransientError
from moonwatch.settings import load_settings

logger = logging.getLogger(__name__)

DB_URL_ENV = "MOONWATCH_DASHBOARD_DB_URL"
REFRESH_ENV = "MOONWATCH_DASHBOARD_REFRESH_SECONDS"
DEFAULT_REFRESH_SECONDS = 30
CONNECTION_NAME = "moonwatch_marts"

# The marts the page reads (the dbt project's contract), in page order.
MARTS = (
    "latest_quotes",
    "quotes_coins",
    "coin_price_hourly",
    "fx_rates_daily",
    "cap_top_10",
    "vol_top_10",
    "pipeline_health",
)

# Points per coin on the percent-change charts; older quotes are averaged into time buckets.
MAX_POINTS_PER_COIN = 1500
HISTORY_DAYS = 30


def refresh_seconds() -> int:
    """MOONWATCH_DASHBOARD_REFRESH_SECONDS as a whole number of seconds (at least 5)."""
    raw = os.environ.get(REFRESH_ENV, "").strip()
    if not raw:
        return DEFAULT_REFRESH_SECONDS
    try:
        value = int(float(raw))
    except ValueError:
        logger.warning("%s=%r is not a number; using %s s", REFRESH_ENV, raw, 30)
        return DEFAULT_REFRESH_SECONDS
    return max(5, value)


REFRESH_SECONDS = refresh_seconds()


class DashboardError(MoonwatchError):
    """The dashboard cannot show data; the message says why and what to do."""


class DatabaseUnavailableError(DashboardError, TransientError):
    """The warehouse does not answer (down, wrong host/port, bad login)."""


class MartMissingError(DashboardError):
    """A mart table does not exist (yet): the dbt project has not built it."""

    def __init__(self, table: str) -> None:
        super().__init__(f"marts.{table} does not exist yet")
        self.table = table


class MartAccessError(DashboardError):
    """The dashboard role may not read a mart (grants missing)."""


# -- connection ----------------------------------------------------------------------------


def to_sqlalchemy_url(raw: str) -> str:
    """``postgresql://…`` (libpq style, any driver suffix) → ``postgresql+psycopg://…``."""
    try:
        url = make_url(raw.strip())
    except ArgumentError as e:
        raise ConfigurationError(
            f"{DB_URL_ENV} is not a database URL; it should look like "
            "postgresql://moonwatch_dashboard:PASSWORD@127.0.0.1:5432/moonwatch "
            '(`eval "$(make -s env)"` sets it for the local stack).'
        ) from e
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise ConfigurationError(
            f"{DB_URL_ENV} must point at PostgreSQL (postgresql://…), not {url.get_backend_name()}."
        )
    url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def describe_target(raw: str | None = None) -> str:
    """``user@host:port/database`` of the dashboard URL, without the password."""
    try:
        url = make_url(to_sqlalchemy_url(raw if raw is not None else _raw_url()))
    except MoonwatchError:
        return "(no valid database URL)"
    return f"{url.username or '?'}@{url.host or 'localhost'}:{url.port or 5432}/{url.database}"


def _raw_url() -> str:
    # Read the environment on every call (not the process-wide cached settings), so a changed
    # MOONWATCH_DASHBOARD_DB_URL takes effect on the next refresh.
    return load_settings().require_dashboard_db_url()


def database_key() -> str:
    """Which database the page reads, as a cache key without secrets. Validates the URL."""
    to_sqlalchemy_url(_raw_url())
    return describe_target()


def connection():
    """The shared SQL connection (a SQLAlchemy engine, pooled, one per distinct URL)."""
    return st.connection(
        CONNECTION_NAME,
        type="sql",
        url=to_sqlalchemy_url(_raw_url()),
        pool_pre_ping=True,
        pool_size=2,
        max_overflow=3,
        connect_args={
            "connect_timeout": 5,
            "application_name": "moonwatch-dashboard",
            "options": "-c statement_timeout=15000 -c default_transaction_read_only=on",
        },
    )


def to_frame(result: Result) -> pd.DataFrame:
    """A query's rows as a DataFrame. Rows become plain tuples first: pandas builds a frame
    from SQLAlchemy Row objects about ten times slower (25 ms for 5,000 rows here)."""
    return pd.DataFrame([tuple(row) for row in result.fetchall()], columns=list(result.keys()))


def _read(sql: str, params: dict | None = None, *, table: str) -> pd.DataFrame:
    try:
        with connection().connect() as conn:
            frame = to_frame(conn.execute(text(sql), params or {}))
    except DBAPIError as e:
        raise _translate(e, table) from e
    except NoSuchModuleError as e:  # pragma: no cover - the driver is pinned
        raise ConfigurationError(f"no PostgreSQL driver for {DB_URL_ENV}: {e}") from e
    return _numeric(frame)


def _translate(error: DBAPIError, table: str) -> DashboardError:
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate == "42P01":  # undefined_table
        return MartMissingError(table)
    if sqlstate == "42501":  # insufficient_privilege
        return MartAccessError(
            f"the dashboard role may not read marts.{table}. The stack grants it on start: run "
            "`make up` again (or grant select on schema marts to the dashboard role)."
        )
    if error.connection_invalidated or sqlstate is None or sqlstate.startswith(("08", "28")):
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        return DatabaseUnavailableError(
            f"cannot reach the warehouse at {describe_target()} ({reason}). Check "
            f"{DB_URL_ENV} and whether PostgreSQL runs: `make status`."
        )
    return DatabaseUnavailableError(
        f"the warehouse refused a query on marts.{table} (SQLSTATE {sqlstate}). "
        "See `make status`, and the dbt build of the marts."
    )


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Postgres ``numeric`` arrives as Decimal objects; charts and sums want floats."""
    for column in frame.columns:
        if frame[column].dtype == object and not frame[column].empty:
            sample = frame[column].dropna()
            if not sample.empty and isinstance(sample.iloc[0], Decimal):
                frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def clear_caches() -> None:
    """Forget cached query results and the connection (tests; a changed URL)."""
    st.cache_data.clear()
    st.cache_resource.clear()


# -- cached queries ------------------------------------------------------------------------
# Each takes ``db`` (from database_key()) so results are cached per database, never by secret.


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def mart_status(db: str) -> pd.DataFrame:
    """Per mart in MARTS: ``table``, ``exists`` and ``has_rows``."""
    present = _read(
        "select table_name from information_schema.tables where table_schema = 'marts'",
        table="(catalog)",
    )
    names = set(present["table_name"].astype(str))
    rows = []
    for table in MARTS:
        has_rows = False
        if table in names:
            # Identifiers come from the MARTS constant, never from input.
            probe = _read(f"select exists (select 1 from marts.{table}) as has_rows", table=table)
            has_rows = bool(probe["has_rows"].iloc[0])
        rows.append({"table": table, "exists": table in names, "has_rows": has_rows})
    return pd.DataFrame(rows, columns=["table", "exists", "has_rows"])


_QUOTE_COLUMNS = (
    "coin_id, symbol, name, slug, quote_currency, source, is_simulated, cmc_rank, price, "
    "volume_24h, volume_change_24h, percent_change_1h, percent_change_24h, percent_change_7d, "
    "percent_change_30d, market_cap, market_cap_dominance, fully_diluted_market_cap, "
    "circulating_supply, total_supply, max_supply, last_updated_at, fetched_at, loaded_at"
)


_COIN_COLUMNS = ("coin_id", "symbol", "name", "quote_currency")


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def coins(db: str) -> pd.DataFrame:
    """Every coin in ``marts.latest_quotes`` for the coin picker: id, symbol, name, currency.

    Narrow, by rank: the picker lists thousands of coins, and the page reads the full quote
    only of the coins it shows (:func:`latest_quotes`). The database sends one row of four
    arrays, not thousands of rows: a row object per coin costs ten times the time, and its
    garbage collections put 80 ms spikes into the page's refreshes.
    """
    order = "cmc_rank nulls last, symbol, quote_currency"
    arrays = _read(
        "select "
        + ", ".join(f"array_agg({c} order by {order}) as {c}" for c in _COIN_COLUMNS)
        + " from marts.latest_quotes",
        table="latest_quotes",
    )
    if arrays.empty or arrays.iloc[0].isna().all():  # no coins: array_agg of nothing is null
        return pd.DataFrame(columns=list(_COIN_COLUMNS))
    return pd.DataFrame({c: arrays.at[0, c] for c in _COIN_COLUMNS})


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def freshness(db: str) -> pd.DataFrame:
    """One row over all of ``marts.latest_quotes``: ``last_updated_at`` (the newest quote),
    ``loaded_at`` (the newest load) and ``is_simulated`` (whether any quote is simulated)."""
    return _read(
        "select max(last_updated_at) as last_updated_at, max(loaded_at) as loaded_at, "
        "coalesce(bool_or(is_simulated), false) as is_simulated from marts.latest_quotes",
        table="latest_quotes",
    )


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def latest_quotes(db: str, coin_ids: tuple[int, ...], quote_currency: str) -> pd.DataFrame:
    """``marts.latest_quotes`` rows of the selected coins in one quote currency, by rank
    (its unique index on coin_id, quote_currency finds them)."""
    if not coin_ids:
        return pd.DataFrame()
    return _read(
        f"select {_QUOTE_COLUMNS} from marts.latest_quotes "
        "where coin_id = any(:coin_ids) and quote_currency = :currency "
        "order by cmc_rank nulls last, symbol",
        {"coin_ids": list(coin_ids), "currency": quote_currency},
        table="latest_quotes",
    )


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def quote_history(db: str, coin_ids: tuple[int, ...], quote_currency: str) -> pd.DataFrame:
    """Percent changes from ``marts.quotes_coins`` over the last HISTORY_DAYS of data.

    Quotes are averaged into time buckets sized so a coin has at most MAX_POINTS_PER_COIN points
    (at least one minute, the source's own update rate).
    """
    if not coin_ids:
        return pd.DataFrame()
    return _read(
        """
        with scoped as (
            select * from marts.quotes_coins
            where coin_id = any(:coin_ids) and quote_currency = :currency
        ),
        bounds as (
            select max(last_updated_at) as hi,
                   max(last_updated_at) - make_interval(days => :days) as lo
            from scoped
        ),
        sized as (
            select lo, make_interval(secs => greatest(
                60, ceil(extract(epoch from hi - greatest(lo, (select min(last_updated_at)
                    from scoped))) / :points))) as bucket
            from bounds
        )
        select s.coin_id, s.symbol,
               date_bin(z.bucket, s.last_updated_at, timestamptz '2000-01-01') as last_updated_at,
               avg(s.price) as price,
               avg(s.percent_change_1h) as percent_change_1h,
               avg(s.percent_change_24h) as percent_change_24h,
               avg(s.percent_change_7d) as percent_change_7d,
               avg(s.percent_change_30d) as percent_change_30d,
               count(*) as samples
        from scoped s cross join sized z
        where s.last_updated_at >= z.lo
        group by 1, 2, 3
        order by 3, 2
        """,
        {
            "coin_ids": list(coin_ids),
            "currency": quote_currency,
            "days": HISTORY_DAYS,
            "points": MAX_POINTS_PER_COIN,
        },
        table="quotes_coins",
    )


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def price_hourly(db: str, coin_ids: tuple[int, ...], quote_currency: str) -> pd.DataFrame:
    """``marts.coin_price_hourly`` rows of the selected coins (OHLC per hour)."""
    if not coin_ids:
        return pd.DataFrame()
    return _read(
        "select coin_id, symbol, name, quote_currency, hour_at, open_price, high_price, "
        "low_price, close_price, avg_price, samples from marts.coin_price_hourly "
        "where coin_id = any(:coin_ids) and quote_currency = :currency order by hour_at, symbol",
        {"coin_ids": list(coin_ids), "currency": quote_currency},
        table="coin_price_hourly",
    )


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def top_10(db: str, table: str) -> pd.DataFrame:
    """The newest snapshot of ``marts.cap_top_10`` or ``marts.vol_top_10``."""
    if table not in ("cap_top_10", "vol_top_10"):
        raise ValueError(f"not a top-10 mart: {table!r}")
    return _read(
        "select snapshot_at, rank, coin_id, symbol, name, quote_currency, source, is_simulated, "
        "price, market_cap, volume_24h, market_cap_dominance, circulating_supply, "
        f"share_of_top_10 from marts.{table} "
        f"where snapshot_at = (select max(snapshot_at) from marts.{table}) order by rank",
        table=table,
    )


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def fx_rates(db: str) -> pd.DataFrame:
    """One rate per currency: the ``is_latest`` row, else the newest date."""
    return _read(
        "select distinct on (currency) upper(currency) as currency, rate_per_usd, as_of_date "
        "from marts.fx_rates_daily where rate_per_usd > 0 "
        "order by currency, is_latest desc nulls last, as_of_date desc",
        table="fx_rates_daily",
    )


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def pipeline_health(db: str) -> pd.DataFrame:
    """``marts.pipeline_health``: per source, last load and the last hour's counts."""
    return _read(
        "select source_name, last_loaded_at, rows_last_hour, rejected_last_hour "
        "from marts.pipeline_health order by source_name",
        table="pipeline_health",
    )
