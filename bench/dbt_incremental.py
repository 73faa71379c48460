"""Measurement 3: dbt incremental cost of ``quotes_coins`` against the size of raw.crypto_quotes.

Set-up (once per run, on a throw-away PostgreSQL):

1. ``dbt run`` on the empty warehouse creates every model (so the mart tables and their indexes
   are dbt's own).
2. Raw history is generated with set-based SQL (``generate_series`` + ``jsonb_build_object`` in
   the message contract, each coin's fixed figures built once) in one-minute rounds of 5,000
   coins, ending a few minutes before now, with ``loaded_at`` = ``last_updated`` + 3 s (as a
   live loader would write it). To fit the time budget the raw table is UNLOGGED and its
   indexes are rebuilt after each fill (reads, which is all dbt does on raw, are unaffected).
3. The mart state of those rows is INSERTed with SQL that mirrors the models (quotes_coins from
   staging.stg_crypto_quotes with the same md5 key; coin_price_hourly aggregated per hour), not
   by a dbt full refresh; mart indexes are dropped for the fill and recreated with dbt's own
   definitions. Growing to the next size prepends older history, so the newest minutes (and the
   incremental lookback window) look the same at every size.

Measured per size, several repetitions: insert ONE new minute (5,000 rows, loaded_at = now)
into raw, then time ``dbt run -s quotes_coins`` (the incremental) through
``moonwatch.dbt.runner.run_dbt`` as the stack's build task runs it: in a process forked from one
that imported dbt before (``moonwatch.preloading_executor``), dbt in that process. The
ceiling for noise is ``dbt run -s pipeline_health`` (a view: dbt's fixed start-up cost) timed
alternately in the same run. ``dbt run -s quotes_coins+`` (the downstream marts too) is timed
once per size for information.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psycopg

from bench import sizes as bench_sizes
from bench.common import COINS, Section, Target, fmt_summary, services, summary
from moonwatch.dbt.runner import DbtResult, run_dbt

logger = logging.getLogger("bench.dbt")

# What forks each timed dbt run: a process that imported dbt once, as the stack's scheduler does
# before it forks the executor's workers. A fork server, not a fork of this process: the
# bench runs threads (the stack's measurement) that a fork would copy mid-flight.
_PRELOADED = multiprocessing.get_context("forkserver")
_PRELOADED.set_forkserver_preload(["dbt.cli.main"])


def run_dbt_as_a_task(args: list[str], **kwargs) -> DbtResult:
    """``run_dbt(args, in_process=True, **kwargs)`` in a fresh child of the preloaded process."""
    with ProcessPoolExecutor(1, mp_context=_PRELOADED, max_tasks_per_child=1) as pool:
        return pool.submit(run_dbt, args, in_process=True, **kwargs).result()


# The message contract as SQL. What is the same in every minute is built once per coin (the
# `coin` CTE, materialized so it is not recomputed per row) and merged with what moves each
# minute: building the whole 27-key object per row took ~80% of the raw fill. The timestamps'
# text is formatted once per minute. c = coin id, m = minute number.
_COIN_FIGURES_SQL = """
select c, jsonb_build_object(
  'schema_version', 1, 'source', 'simulator', 'coin_id', c, 'symbol', 'C' || c,
  'name', 'Coin ' || c, 'slug', 'coin-' || c, 'cmc_rank', c, 'num_market_pairs', 100,
  'circulating_supply', 19000000.0, 'total_supply', 19000000.0, 'max_supply', 21000000.0,
  'infinite_supply', false, 'quote_currency', 'USD',
  'volume_24h', 1e10, 'volume_change_24h', 1.5, 'percent_change_1h', 0.1,
  'percent_change_24h', -1.2, 'percent_change_7d', 3.4, 'percent_change_30d', 10.0,
  'market_cap', (100 + c) * 19000000.0, 'market_cap_dominance', 0.01,
  'fully_diluted_market_cap', (100 + c) * 21000000.0) as figures
from generate_series(1, %(coins)s::int) as c
"""
_MINUTE_FIGURES_SQL = """
figures || jsonb_build_object(
  'price', round((100 + c) * (1 + ((m * 7919 + c) %% 200 - 100) / 1e4)::numeric, 6),
  'last_updated', last_updated, 'fetched_at', fetched_at)
"""


def insert_minutes_sql(with_loaded_at: bool) -> str:
    """Rows for minutes m in [%(lo)s, %(hi)s) of coins 1..%(coins)s; ts = anchor + m minutes."""
    loaded = ", loaded_at" if with_loaded_at else ""
    loaded_value = ", ts + interval '3 seconds'" if with_loaded_at else ""
    return f"""
with coin as materialized ({_COIN_FIGURES_SQL})
insert into raw.crypto_quotes (coin_id, quote_currency, last_updated, message, kafka_topic,
                               kafka_partition, kafka_offset{loaded})
select c, 'USD', ts, {_MINUTE_FIGURES_SQL}, 'crypto', 0,
       (m + 1000000)::bigint * 5000 + c{loaded_value}
from generate_series(%(lo)s::int, %(hi)s::int - 1) as m
cross join lateral (select %(anchor)s::timestamptz + m * interval '1 minute' as ts) as t
cross join lateral (
  select to_char(ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as last_updated,
         to_char((ts + interval '2 seconds') at time zone 'UTC',
                 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as fetched_at
) as stamps
cross join coin
"""


_MART_COLUMNS = (
    "quote_key, coin_id, symbol, name, slug, quote_currency, source, is_simulated, cmc_rank, "
    "price, volume_24h, volume_change_24h, percent_change_1h, percent_change_24h, "
    "percent_change_7d, percent_change_30d, market_cap, market_cap_dominance, "
    "fully_diluted_market_cap, circulating_supply, total_supply, max_supply, last_updated_at, "
    "fetched_at, loaded_at"
)
_MART_FILL = f"""
insert into marts.quotes_coins ({_MART_COLUMNS})
select md5(coin_id::text || '|' || quote_currency || '|'
           || to_char(last_updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
       {_MART_COLUMNS.split(", ", 1)[1]}
from staging.stg_crypto_quotes
where last_updated_at >= %(lo)s and last_updated_at < %(hi)s
"""
_HOURLY_FILL = """
insert into marts.coin_price_hourly (coin_id, symbol, name, quote_currency, hour_at, open_price,
    high_price, low_price, close_price, avg_price, samples, last_updated_at, last_loaded_at)
select coin_id, (array_agg(symbol order by last_updated_at desc))[1],
       (array_agg(name order by last_updated_at desc))[1], quote_currency, hour_at,
       (array_agg(price order by last_updated_at asc))[1], max(price), min(price),
       (array_agg(price order by last_updated_at desc))[1], avg(price), count(*),
       max(last_updated_at), max(loaded_at)
from (select *, date_trunc('hour', last_updated_at, 'UTC') as hour_at
      from marts.quotes_coins
      where last_updated_at >= date_trunc('hour', %(lo)s::timestamptz, 'UTC')
        and last_updated_at < date_trunc('hour', %(hi)s::timestamptz, 'UTC')
                              + interval '1 hour') as q
group by coin_id, quote_currency, hour_at
"""


@contextlib.contextmanager
def _indexes_dropped(conn: psycopg.Connection, table: str):
    """Drop ``table``'s indexes and constraints-backed keys for a bulk fill; recreate after."""
    schema, name = table.split(".")
    defs = conn.execute(
        "select indexname, indexdef from pg_indexes where schemaname = %s and tablename = %s",
        (schema, name),
    ).fetchall()
    cons = conn.execute(
        "select conname, pg_get_constraintdef(oid) from pg_constraint"
        " where conrelid = %s::regclass and contype in ('p', 'u')",
        (table,),
    ).fetchall()
    con_names = {c for c, _ in cons}
    for cname, _ in cons:
        conn.execute(f'alter table {table} drop constraint "{cname}"')
    for iname, _ in defs:
        if iname not in con_names:
            conn.execute(f'drop index if exists {schema}."{iname}"')
    try:
        yield
    finally:
        for cname, cdef in cons:
            conn.execute(f'alter table {table} add constraint "{cname}" {cdef}')
        for iname, idef in defs:
            if iname not in con_names:
                conn.execute(idef)
        conn.execute(f"analyze {table}")


class Warehouse:
    """The throw-away warehouse with its raw history and mart state."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.target = workdir / "target"
        self.logs = workdir / "logs"
        with psycopg.connect(url) as conn:
            now = conn.execute("select date_trunc('minute', now())").fetchone()[0]
        # Minute 0 is 5 minutes before now; history is negative minutes, new minutes positive.
        self.anchor = now
        self.oldest = 0  # history covers minutes [oldest, 0)
        self.next_minute = 0
        self.rows = 0

    def dbt(self, *args: str) -> tuple[float, float | None]:
        """Run dbt; (wall seconds, seconds dbt reports for the selected models' execution)."""
        result = run_dbt_as_a_task(
            list(args),
            warehouse_url=self.url,
            target_path=self.target,
            log_path=self.logs,
            extra_env={"MOONWATCH_DBT_THREADS": "1"},
        )
        if not result.ok:
            raise RuntimeError(f"dbt {' '.join(args)} failed:\n{result.output[-3000:]}")
        model_s = None
        with contextlib.suppress(OSError, ValueError, KeyError):
            runs = json.loads((self.target / "run_results.json").read_text())
            model_s = sum(r["execution_time"] for r in runs["results"])
        return result.seconds, model_s

    def grow_to(self, total_rows: int) -> dict[str, float]:
        """Prepend history until raw holds ``total_rows`` (plus the minutes added since)."""
        add_minutes = (total_rows - self.rows) // COINS
        if add_minutes <= 0:
            return {}
        lo, hi = self.oldest - add_minutes, self.oldest
        params = {"lo": lo, "hi": hi, "anchor": self.anchor - _minutes(5), "coins": COINS}
        span = {
            "lo": self.anchor - _minutes(5) + _minutes(lo),
            "hi": self.anchor - _minutes(5) + _minutes(hi),
        }
        timings = {}
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("set maintenance_work_mem = '256MB'")
            conn.execute("set work_mem = '64MB'")
            t = time.perf_counter()
            with _indexes_dropped(conn, "raw.crypto_quotes"):
                conn.execute(insert_minutes_sql(with_loaded_at=True), params)
            timings["raw_fill_s"] = time.perf_counter() - t
            t = time.perf_counter()
            with _indexes_dropped(conn, "marts.quotes_coins"):
                conn.execute(_MART_FILL, span)
            timings["mart_fill_s"] = time.perf_counter() - t
            t = time.perf_counter()
            conn.execute(
                "delete from marts.coin_price_hourly where hour_at >= date_trunc('hour', %(lo)s"
                "::timestamptz, 'UTC') and hour_at <= date_trunc('hour', %(hi)s::timestamptz,"
                " 'UTC')",
                span,
            )
            conn.execute(_HOURLY_FILL, span)
            conn.execute("analyze marts.coin_price_hourly")
            timings["hourly_fill_s"] = time.perf_counter() - t
            # A warehouse that grew to this size over months was vacuumed by autovacuum along
            # the way (every page visible to all, so the marts' index-only scans skip the
            # heap). The fill writes months in minutes, and the first vacuum of those pages
            # (~6 min of throttled I/O at 10M rows) would run behind the measurements that
            # follow, dbt's timings and the dashboard's queries. Here it runs unthrottled,
            # counted in set-up.
            t = time.perf_counter()
            conn.execute("vacuum (analyze) raw.crypto_quotes, marts.quotes_coins")
            timings["vacuum_s"] = time.perf_counter() - t
        self.oldest = lo
        self.rows += add_minutes * COINS
        return timings

    def add_new_minute(self) -> None:
        """One new minute of 5,000 quotes, loaded now (as the loader would)."""
        m = self.next_minute
        self.next_minute += 1
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                insert_minutes_sql(with_loaded_at=False),
                {"lo": m, "hi": m + 1, "anchor": self.anchor, "coins": COINS},
            )
        self.rows += COINS

    def table_sizes(self) -> dict[str, str]:
        with psycopg.connect(self.url) as conn:
            return dict(
                conn.execute(
                    "select t, pg_size_pretty(pg_total_relation_size(t)) from unnest(array["
                    "'raw.crypto_quotes', 'marts.quotes_coins', 'marts.coin_price_hourly']) t"
                ).fetchall()
            )


def _minutes(n: int):
    import datetime as dt

    return dt.timedelta(minutes=n)


def prepare(config, workdir: Path) -> Warehouse:
    wh = Warehouse(config.warehouse_url, workdir)
    with psycopg.connect(wh.url, autocommit=True) as conn:
        conn.execute("alter table raw.crypto_quotes set unlogged")
    wh.dbt("run")  # every model, on empty raw tables: creates the marts
    return wh


def measure(quick: bool, sizes: list[int] | None = None, keep: list | None = None) -> Section:
    """Runs the dbt measurement; if ``keep`` is a list, the live warehouse is handed to the
    dashboard measurement through it (a callback) before the services stop."""
    sizes = sizes or list(bench_sizes.DBT_RAW_ROWS[quick])
    reps = 2 if quick else 3
    section = Section("3. dbt incremental cost against raw table size")
    section.add(
        "Each repetition inserts one new minute of 5,000 coins into raw.crypto_quotes, then "
        "times `dbt run -s quotes_coins` (incremental, delete+insert on quote_key) via "
        "`moonwatch.dbt.runner.run_dbt` with a persistent target folder (partial parse, as the "
        "stack's build keeps), in a process forked from one that imported dbt first, as the "
        "stack's build task is. Ceiling for noise: `dbt run -s pipeline_health` (a view, "
        "dbt's fixed start-up cost), timed alternately. *model s* is the model's own execution "
        "time from run_results.json. Mart state for the generated history was inserted with "
        "SQL mirroring the models (see bench/dbt_incremental.py), not by dbt.",
        "",
        "| raw rows | quotes_coins rows | incremental wall s | model s | dbt floor s | "
        "incremental / floor | quotes_coins+ wall s | set-up s (raw, mart, hourly, vacuum) |",
        "|---|---|---|---|---|---|---|---|",
    )
    results: dict[int, float] = {}
    with (
        services(pg=True, kafka=False) as config,
        tempfile.TemporaryDirectory(prefix="moonwatch-bench-dbt-") as tmp,
    ):
        wh = prepare(config, Path(tmp))
        wh.add_new_minute()  # the first incremental run then has its usual neighbourhood
        for size in sizes:
            setup = wh.grow_to(size)
            wh.dbt("run", "-s", "quotes_coins")  # settle the new history into the watermark
            walls, models, floors = [], [], []
            for _ in range(reps):
                wh.add_new_minute()
                wall, model_s = wh.dbt("run", "-s", "quotes_coins")
                walls.append(wall)
                if model_s is not None:
                    models.append(model_s)
                floors.append(wh.dbt("run", "-s", "pipeline_health")[0])
            plus_wall = float("nan")
            if not quick or size == sizes[-1]:  # also builds latest_quotes for the dashboard
                wh.add_new_minute()
                plus_wall, _ = wh.dbt("run", "-s", "quotes_coins+")
            with psycopg.connect(wh.url) as conn:
                mart_rows = conn.execute("select count(*) from marts.quotes_coins").fetchone()[0]
            ratio = summary([w / f for w, f in zip(walls, floors, strict=True)])
            results[size] = summary(walls)["median"]
            section.add(
                f"| {wh.rows:,} | {mart_rows:,} | {fmt_summary(summary(walls))} | "
                f"{fmt_summary(summary(models))} | {fmt_summary(summary(floors))} | "
                f"{fmt_summary(ratio)} | {plus_wall:.1f} | ".replace("| nan |", "| not run |")
                + ", ".join(f"{v:.0f}" for v in setup.values())
                + " |"
            )
            logger.info("dbt size %d: %s", size, summary(walls))
        section.add("", f"Table sizes at the end: {wh.table_sizes()}")
        big, small = max(results), min(results)
        section.check(
            f"dbt incremental at {big:,} raw rows (median wall)",
            results[big],
            Target("<", 5, " s"),
        )
        section.check(
            f"dbt incremental growth {big:,} vs {small:,}",
            results[big] / results[small],
            Target("<=", 1.5, "x"),
        )
        if keep is not None:
            for callback in keep:
                callback(config, wh, section)
    return section
