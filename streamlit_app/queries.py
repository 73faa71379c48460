"""All of the dashboard's data access: cached, read-only queries on schema ``marts``.

The connection is ``st.connection(..., type="sql")`` on MOONWATCH_DASHBOARD_DB_URL (the
read-only dashboard role). Every query function is ``st.cache_data`` with ``ttl`` equal to the
page's refresh interval (MOONWATCH_DASHBOARD_REFRESH_SECONDS, default 30), so one refresh costs
at most one round of queries however many people watch the page, and a widget change (coin,
currency) is answered from the cache. Every setting comes from :mod:`moonwatch.settings`.
Driver errors become :class:`DashboardError` subclasses whose messages say what to do and never
contain the password.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import psycopg
import streamlit as st
from sqlalchemy import text
from sqlalchemy.engine import Result, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from moonwatch.dbt import docs as dbt_docs
from moonwatch.errors import ConfigurationError, MoonwatchError, TransientError
from moonwatch.settings import Settings, current_settings

DB_URL_ENV = "MOONWATCH_DASHBOARD_DB_URL"
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
    """MOONWATCH_DASHBOARD_REFRESH_SECONDS (``Settings.dashboard_refresh_seconds``: default 30,
    at least 5); a bad value is a ConfigurationError that names it."""
    return current_settings().dashboard_refresh_seconds


def stale_after_seconds() -> int:
    """MOONWATCH_STALE_AFTER_SECONDS (``Settings.stale_after_seconds``: default 300, at least 1):
    a coin whose newest row the pipeline stamped longer ago than this is stale (marked, and not
    preselected). Read on every page run, so a changed value takes effect on the next refresh."""
    return current_settings().stale_after_seconds


def _refresh_seconds_at_import() -> int:
    # The cache TTL and the page's timer are fixed when this module loads. Bad settings must not
    # crash the import: the page then reads the settings again and shows their error.
    try:
        return refresh_seconds()
    except ConfigurationError:
        return Settings.model_fields["dashboard_refresh_seconds"].default


REFRESH_SECONDS = _refresh_seconds_at_import()


class DashboardError(MoonwatchError):
    """The dashboard cannot show data; the message says why and what to do."""


class DatabaseUnavailableError(DashboardError, TransientError):
    """The warehouse does not answer (down, wrong host/port, bad login)."""


class MartMissingError(DashboardError):
    """A mart table does not exist (yet): the dbt project has not built it."""

    def __init__(self, table: str) -> None:
        super().__init__(f"marts.{table} does not exist yet")
        self.table = table


class MartOutdatedError(DashboardError):
    """A mart lacks a column the page reads: it was built by an older dbt project."""

    def __init__(self, table: str, detail: str) -> None:
        super().__init__(
            f"marts.{table} was built by an older version of the dbt project ({detail}); "
            "the next `dbt build` (the transform DAGs run it) rebuilds it"
        )
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
    # The settings as the environment holds them now (not the process-wide ones read once), so
    # a changed MOONWATCH_DASHBOARD_DB_URL takes effect on the next refresh.
    return current_settings().require_dashboard_db_url()


def dbt_docs_url() -> str:
    """The dbt docs page (Cosmos' plugin on Airflow's api-server), from MOONWATCH_AIRFLOW_URL."""
    return dbt_docs.docs_url(current_settings().airflow_url)


def database_key() -> str:
    """Which database the page reads, as a cache key without secrets. Validates the URL."""
    to_sqlalchemy_url(_raw_url())
    return describe_target()


# Every dashboard session: bounded, read-only, and without PostgreSQL's JIT. Short queries
# never win back its compile time, and pipeline_health's many small subqueries add up to a
# cost estimate that turns it on at scale: 0.30 s with it and 0.06 s without at 1M raw rows,
# 4.7 s at 10M.
SESSION_OPTIONS = "-c statement_timeout=15000 -c default_transaction_read_only=on -c jit=off"


class BinaryCursor(psycopg.Cursor):
    """A cursor that asks PostgreSQL for its results in binary. Parsing timestamps and
    floats from text was half of the percent-change history's read (4,458 rows: 21 ms of
    text against 10 ms of binary); every type the marts use has a binary loader."""

    def __init__(self, connection: psycopg.Connection, **kwargs: object) -> None:
        super().__init__(connection, **kwargs)
        self.format = psycopg.pq.Format.BINARY


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
            "options": SESSION_OPTIONS,
            "cursor_factory": BinaryCursor,
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
    if sqlstate == "42703":  # undefined_column
        detail = str(error.orig).strip().splitlines()[0] if error.orig else "a column is missing"
        return MartOutdatedError(table, detail)
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
# One cache policy for all of them: an answer lives for one refresh interval.
_cached = st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)


# A view with one row per raw table whatever the tables hold (a null source for one that never
# loaded: dbt_project/models/marts/pipeline_health.sql): once it exists it has rows, and a probe
# would compute it in full (~65 ms at 10M raw quotes) to learn nothing.
ROWS_ONCE_BUILT = frozenset({"pipeline_health"})


@_cached
def mart_status(db: str) -> pd.DataFrame:
    """Per mart in MARTS: ``table``, ``exists`` and ``has_rows``."""
    present = _read(
        "select table_name from information_schema.tables where table_schema = 'marts'",
        table="(catalog)",
    )
    names = set(present["table_name"].astype(str))
    rows = []
    for table in MARTS:
        if table not in names:
            has_rows = False
        elif table in ROWS_ONCE_BUILT:
            has_rows = True
        else:
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

# When the pipeline itself last touched a row: the producer's fetch, bounded by the loader's
# own stamp and by now. Never the source's last_updated, which a wrong clock (or a hostile
# message) can put in 2099 and which would make a stalled pipeline look fresh for ever.
STAMPED_AT = "least(fetched_at, loaded_at, now())"

# Every query that reads quotes keeps to one source ('coinmarketcap' or 'simulator', the
# marts' `source` column): simulated and real numbers never share a chart, a figure or a badge.
_COIN_COLUMNS = ("coin_id", "symbol", "name", "quote_currency", "stamped_at")
SOURCES = ("coinmarketcap", "simulator")


def _read_source(sql: str, source: str, *, table: str, **params: object) -> pd.DataFrame:
    """``sql`` (on ``marts.<table>``) with ``:source`` bound to ``source`` and ``params``.
    Anything but a known source is a caller's bug (a currency passed where a source belongs
    would silently match no row)."""
    if source not in SOURCES:
        raise ValueError(f"not a data source: {source!r}; one of {', '.join(SOURCES)}")
    return _read(sql, {**params, "source": source}, table=table)


def _read_coins(
    sql: str, coin_ids: tuple[int, ...], source: str, *, table: str, **params: object
) -> pd.DataFrame:
    """:func:`_read_source` with ``:coin_ids`` bound to the picked coins; none picked, no
    query (an empty frame)."""
    if not coin_ids:
        return pd.DataFrame()
    return _read_source(sql, source, table=table, coin_ids=list(coin_ids), **params)


@_cached
def sources(db: str) -> pd.DataFrame:
    """Per ``source`` in ``marts.latest_quotes``: ``coins`` (distinct ids), ``stamped_at`` (the
    newest pipeline-stamped time, see STAMPED_AT), ``last_updated_at`` (the newest source time,
    for reference only) and ``is_simulated``. The page shows the source with the newest
    ``stamped_at`` (:func:`streamlit_app.freshness.active_source`)."""
    return _read(
        f"select source, count(distinct coin_id) as coins, max({STAMPED_AT}) as stamped_at, "
        "max(last_updated_at) as last_updated_at, "
        "coalesce(bool_or(is_simulated), false) as is_simulated "
        "from marts.latest_quotes group by source order by source",
        table="latest_quotes",
    )


@_cached
def coins(db: str, *, source: str) -> pd.DataFrame:
    """Every coin of ``source`` in ``marts.latest_quotes`` for the coin picker, by rank: id,
    symbol, name, and the quote currency and pipeline-stamped time of its newest row (a coin
    has a row per quote currency it was ever fetched in; the newest one is current).

    Narrow: the picker lists thousands of coins, and the page reads the full quote only of the
    coins it shows (:func:`latest_quotes`). The database sends one row of arrays, not thousands
    of rows: a row object per coin costs ten times the time, and its garbage collections put
    80 ms spikes into the page's refreshes.
    """
    order = "cmc_rank nulls last, symbol, coin_id"
    arrays = _read_source(
        "with newest as ("
        f" select distinct on (coin_id) coin_id, symbol, name, quote_currency, cmc_rank,"
        f" {STAMPED_AT} as stamped_at from marts.latest_quotes where source = :source"
        f" order by coin_id, {STAMPED_AT} desc nulls last, quote_currency) select "
        + ", ".join(f"array_agg({c} order by {order}) as {c}" for c in _COIN_COLUMNS)
        + " from newest",
        source,
        table="latest_quotes",
    )
    if arrays.empty or arrays.iloc[0].isna().all():  # no coins: array_agg of nothing is null
        return pd.DataFrame(columns=list(_COIN_COLUMNS))
    frame = pd.DataFrame({c: arrays.at[0, c] for c in _COIN_COLUMNS})
    frame["stamped_at"] = pd.to_datetime(frame["stamped_at"], utc=True)
    return frame


@_cached
def latest_quotes(db: str, coin_ids: tuple[int, ...], *, source: str) -> pd.DataFrame:
    """The newest ``marts.latest_quotes`` row of each selected coin of ``source`` (whatever
    its quote currency: the page converts each row from its own), with ``stamped_at``, by
    rank."""
    return _read_coins(
        f"select * from (select distinct on (coin_id) {_QUOTE_COLUMNS}, "
        f"{STAMPED_AT} as stamped_at from marts.latest_quotes "
        "where coin_id = any(:coin_ids) and source = :source "
        f"order by coin_id, {STAMPED_AT} desc nulls last, quote_currency) as newest "
        "order by cmc_rank nulls last, symbol, coin_id",
        coin_ids,
        source,
        table="latest_quotes",
    )


# Module level, so a test can ask Postgres for its plan (an index-only scan).
QUOTE_HISTORY_SQL = """
    with bounds as materialized (
        -- Only columns of the index on (source, coin_id, last_updated_at, ...): Postgres
        -- answers from the index alone instead of one heap page per quote.
        select max(last_updated_at) as hi, min(last_updated_at) as first
        from marts.quotes_coins
        where coin_id = any(:coin_ids) and source = :source
          and last_updated_at <= now() + interval '5 minutes'
    ),
    sized as materialized (
        select hi - make_interval(days => :days) as lo,
               -- points - 1 widths span the data: however the buckets align, at most
               -- :points of them hold a quote.
               make_interval(secs => greatest(60, ceil(extract(epoch from
                   hi - greatest(hi - make_interval(days => :days), first))
                   / greatest(:points - 1, 1)))) as bucket
        from bounds
    )
    -- The window and the bucket are scalars (subqueries run once): the window's start bounds
    -- the index range, and no row recomputes the bucket's interval arithmetic.
    select q.coin_id, q.quote_currency,
           date_bin((select bucket from sized), q.last_updated_at, timestamptz '2000-01-01')
               as last_updated_at,
           avg(q.price) as price,
           avg(q.percent_change_1h) as percent_change_1h,
           avg(q.percent_change_24h) as percent_change_24h,
           avg(q.percent_change_7d) as percent_change_7d,
           avg(q.percent_change_30d) as percent_change_30d,
           count(*) as samples
    from marts.quotes_coins as q
    where q.coin_id = any(:coin_ids) and q.source = :source
      and q.last_updated_at <= now() + interval '5 minutes'
      and q.last_updated_at >= (select lo from sized)
    group by 1, 2, 3
    order by 3, 1, 2
"""


@_cached
def quote_history(db: str, coin_ids: tuple[int, ...], *, source: str) -> pd.DataFrame:
    """Percent changes and prices from ``marts.quotes_coins`` over the last HISTORY_DAYS of
    data of ``source``, per coin and quote currency (converted per row by the page).

    Quotes are averaged into time buckets sized so a coin has at most MAX_POINTS_PER_COIN points
    (at least one minute, the source's own update rate). The window ends now at the latest: a
    source time in the future (a wrong clock) must not push the window past all real history.
    """
    return _read_coins(
        QUOTE_HISTORY_SQL,
        coin_ids,
        source,
        table="quotes_coins",
        days=HISTORY_DAYS,
        points=MAX_POINTS_PER_COIN,
    )


@_cached
def price_hourly(db: str, coin_ids: tuple[int, ...], *, source: str) -> pd.DataFrame:
    """``marts.coin_price_hourly`` rows of the selected coins of ``source`` (OHLC per hour and
    quote currency; needs the mart's ``source`` column)."""
    return _read_coins(
        "select coin_id, symbol, name, quote_currency, source, hour_at, open_price, "
        "high_price, low_price, close_price, avg_price, samples from marts.coin_price_hourly "
        "where coin_id = any(:coin_ids) and source = :source "
        "and hour_at <= now() + interval '5 minutes' order by hour_at, coin_id, quote_currency",
        coin_ids,
        source,
        table="coin_price_hourly",
    )


@_cached
def top_10(db: str, table: str, *, source: str) -> pd.DataFrame:
    """The newest snapshot of ``source`` in ``marts.cap_top_10`` or ``marts.vol_top_10``."""
    if table not in ("cap_top_10", "vol_top_10"):
        raise ValueError(f"not a top-10 mart: {table!r}")
    # The table name comes from the two literals checked above, never from input.
    return _read_source(
        "select snapshot_at, rank, coin_id, symbol, name, quote_currency, source, is_simulated, "
        "price, market_cap, volume_24h, market_cap_dominance, circulating_supply, "
        f"share_of_top_10 from marts.{table} where source = :source and snapshot_at = "
        f"(select max(snapshot_at) from marts.{table} where source = :source) order by rank",
        source,
        table=table,
    )


# Rates older than the history window are only needed as the last known one before it.
FX_DAYS = HISTORY_DAYS + 10


@_cached
def fx_rates(db: str) -> pd.DataFrame:
    """``marts.fx_rates_daily`` for the last FX_DAYS days, plus each currency's newest older
    rate when it has none in that window (to carry forward): currency, as_of_date,
    rate_per_usd. The page converts each point at the rate of its own date."""
    return _read(
        "select upper(currency) as currency, as_of_date, rate_per_usd "
        "from marts.fx_rates_daily where rate_per_usd > 0 "
        "and as_of_date >= current_date - make_interval(days => :days) "
        "union all "
        "select * from (select distinct on (currency) upper(currency), as_of_date, rate_per_usd "
        "from marts.fx_rates_daily where rate_per_usd > 0 "
        "and as_of_date < current_date - make_interval(days => :days) "
        "order by currency, as_of_date desc) as older "
        "order by as_of_date, currency",
        {"days": FX_DAYS},
        table="fx_rates_daily",
    )


@_cached
def pipeline_health(db: str) -> pd.DataFrame:
    """``marts.pipeline_health``: per raw table (``source_name``), last load and the last
    hour's counts. Every column is read: where the mart also splits its figures by data
    ``source``, the page keeps the rows of the source it shows (:func:`for_source`)."""
    return _read(
        "select * from marts.pipeline_health order by source_name", table="pipeline_health"
    )


@_cached
def reconciliation(db: str, *, source: str) -> pd.DataFrame:
    """The newest ``marts.reconciliation_runs`` row of ``source``: how many coins sampled
    again from the source the marts held with the same numbers, and the verdict."""
    return _read_source(
        "select sampled_at, checked_at, samples, matched, mismatched, superseded, not_loaded, "
        "pending, mismatched_coins, status from marts.reconciliation_runs "
        "where source = :source and is_latest",
        source,
        table="reconciliation_runs",
    )


@_cached
def credit_budget(db: str, *, source: str) -> pd.DataFrame:
    """``marts.credit_budget`` for ``source``: the producer's effective cadence and the
    month's credits used and left (the simulator's are counted, never enforced)."""
    return _read_source(
        "select is_simulated, credits_budget, credits_used, credits_left, "
        "quotes_every_minutes, listings_every_minutes, decided_at "
        "from marts.credit_budget where source = :source",
        source,
        table="credit_budget",
    )


@_cached
def recent_alerts(db: str, *, source: str) -> pd.DataFrame:
    """The 20 newest ``marts.alert_events`` (DAG crypto_alerts): events on ``source``'s quotes
    and DAG failures (no source), the most recently opened or resolved first."""
    return _read_source(
        "select status, title, opened_at, resolved_at, open_sent_at, delivery_error "
        "from marts.alert_events where source = :source or source is null "
        "order by last_change_at desc, event_id desc limit 20",
        source,
        table="alert_events",
    )


def for_source(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """The ``marts.pipeline_health`` rows that describe what the page shows.

    Where the mart splits its figures by data source it marks the current one per raw table
    (``is_current``: the source of that table's newest row; FX rates have their own sources,
    so the quotes' source cannot pick them); else its ``source`` must be ``source``. Rows
    with a null ``source`` (a table that never loaded) always stay; a mart without a
    ``source`` column is not split, and all of it stays.
    """
    if "source" not in frame.columns:
        return frame
    if "is_current" in frame.columns:
        keep = frame["is_current"].fillna(False).astype(bool)
    else:
        keep = frame["source"] == source
    return frame[frame["source"].isna() | keep]
