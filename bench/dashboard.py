"""Measurement 4: the dashboard's mart queries and a fully rendered page in headless Chromium.

Runs on the warehouse measurement 3 leaves behind (its largest raw size, marts built by dbt),
plus a 5,000-coin listings snapshot and fx rates so every mart the page reads has rows.

* Queries: the exact SQL of every ``streamlit_app.queries`` function the page calls (captured
  by calling the functions with ``_read`` swapped for a recorder), run through SQLAlchemy +
  psycopg as the read-only dashboard role with the page's connection options, in a process
  whose start-up heap is frozen as the page's server's is; 2 warm-ups, then repetitions.
  Ceiling for noise: ``select 1`` on the same connection.
* Page: ``streamlit run streamlit_app/app.py`` on a free port with MOONWATCH_DASHBOARD_DB_URL;
  the launcher's warm-up run (``streamlit_app.warmup``), then headless Chromium (playwright)
  opens it in a fresh context per load and times two moments: the headline price is in the
  DOM, and the script is idle with every Plotly chart drawn. Cold loads (each waits past the
  page's cache TTL) and warm loads (right after a cold one). Ceiling: the same measurement on
  a trivial one-metric, one-chart Streamlit + Plotly page, served at the same time and loaded
  in turn with the dashboard (and the floor pages); the target is the dashboard within 1.5x
  of it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import psycopg
import requests

from bench.common import Section, Target, fmt_summary, percentile, summary
from moonwatch.stack.config import CHECKOUT
from moonwatch.stack.process import free_port
from moonwatch.stack.services import dashboard_argv
from streamlit_app.first_paint import FIRST_PAINT_SECONDS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The page's refresh (and cache TTL) while it is measured: a cold load waits past it. Half the
# default, to keep the run short, and still three times the slowest load seen here (~5 s): a
# load that took longer than it would start the page's timed refresh while being measured.
REFRESH_SECONDS = 15
PAGE_COINS = (1, 2, 3)  # the page's default pick: no BTC/ETH/SOL here, so the first three
SOURCE = "simulator"  # the bench loads simulated data; every page query filters on it


def seed_other_marts(wh) -> None:
    """A 5,000-coin listings snapshot (under both rankings, as a listings run stores it), fx
    rates and one more minute of quotes in a clock minute of its own, then the marts built
    from them."""
    with psycopg.connect(wh.url, autocommit=True) as conn:
        conn.execute(
            """
            insert into raw.crypto_listings
              (snapshot_at, coin_id, quote_currency, source, ranked_by, coin)
            select date_trunc('minute', now()), c, 'USD', 'simulator', ranked_by,
            jsonb_build_object(
              'id', c, 'symbol', 'C' || c, 'name', 'Coin ' || c, 'slug', 'coin-' || c,
              'cmc_rank', c, 'num_market_pairs', 100, 'circulating_supply', 19000000.0,
              'total_supply', 19000000.0, 'max_supply', 21000000.0, 'infinite_supply', false,
              'date_added', '2020-01-01T00:00:00Z', 'tags', jsonb_build_array(),
              'last_updated', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
              'quote', jsonb_build_object('USD', jsonb_build_object(
                 'price', 100 + c, 'volume_24h', 1e9 / c, 'market_cap', (100 + c) * 1.9e7,
                 'market_cap_dominance', 0.01, 'percent_change_1h', 0.1,
                 'percent_change_24h', -1.2, 'percent_change_7d', 3.4,
                 'percent_change_30d', 10.0, 'fully_diluted_market_cap', (100 + c) * 2.1e7,
                 'volume_change_24h', 1.5,
                 'last_updated', to_char(now() at time zone 'UTC',
                                         'YYYY-MM-DD"T"HH24:MI:SS"Z"'))))
            from generate_series(1, 5000) c,
                 (values ('market_cap'), ('volume_24h')) as rankings (ranked_by)
            on conflict do nothing
            """
        )
        conn.execute(
            "insert into raw.fx_rates (as_of_date, currency, rate_per_usd, source)"
            " select current_date - d, cur, rate, 'bench' from generate_series(0, 29) d,"
            " (values ('EUR', 0.92), ('SEK', 10.5), ('NOK', 10.8), ('DKK', 6.9)) v(cur, rate)"
            " on conflict do nothing"
        )
    # pipeline_health counts raw rows loaded since int_loads_per_minute's newest minute itself
    # (through the staging model, JSON-parsed, to see quarantined rows): on a live stack that
    # tail is the current minute's load, at most one minute of quotes. The dbt section's last
    # inserts came seconds apart, up to four minutes of quotes in one clock minute, and the
    # query's time with them. So one more minute is loaded in a clock minute of its own, as the
    # loader would, before the build.
    time.sleep(60 - time.time() % 60 + 0.5)
    wh.add_new_minute()
    # +pipeline_health: its int_loads_per_minute too, which the transform DAG builds every run.
    wh.dbt("run", "-s", "cap_top_10", "vol_top_10", "fx_rates_daily", "+pipeline_health")


def captured_queries() -> list[tuple[str, str, dict]]:
    """(name, sql, params) of every query the page runs, from streamlit_app.queries itself."""
    from streamlit_app import queries

    calls: list[tuple[str, str, dict]] = []
    current = {"name": ""}

    def recorder(sql: str, params: dict | None = None, *, table: str) -> pd.DataFrame:
        name = current["name"] if table != "(catalog)" else "mart_status: catalog"
        if current["name"] == "mart_status" and table != "(catalog)":
            name = f"mart_status: {table} has rows"
        calls.append((name, sql, dict(params or {})))
        if table == "(catalog)":
            return pd.DataFrame({"table_name": list(queries.MARTS)})
        if current["name"] == "mart_status":
            return pd.DataFrame({"has_rows": [True]})
        return pd.DataFrame()

    original = queries._read
    queries._read = recorder
    try:
        steps = [
            ("mart_status", lambda db: queries.mart_status(db)),
            ("sources", lambda db: queries.sources(db)),
            ("coins", lambda db: queries.coins(db, source=SOURCE)),
            ("latest_quotes", lambda db: queries.latest_quotes(db, PAGE_COINS, source=SOURCE)),
            ("fx_rates", lambda db: queries.fx_rates(db)),
            ("top_10 cap", lambda db: queries.top_10(db, "cap_top_10", source=SOURCE)),
            ("top_10 vol", lambda db: queries.top_10(db, "vol_top_10", source=SOURCE)),
            ("price_hourly", lambda db: queries.price_hourly(db, PAGE_COINS, source=SOURCE)),
            ("quote_history", lambda db: queries.quote_history(db, PAGE_COINS, source=SOURCE)),
            ("pipeline_health", lambda db: queries.pipeline_health(db)),
        ]
        for name, call in steps:
            current["name"] = name
            call(f"bench-capture-{time.time_ns()}")  # a fresh cache key: never a cached answer
    finally:
        queries._read = original
    return calls


def time_queries(dashboard_url: str, reps: int) -> tuple[list[tuple[str, dict, int]], dict]:
    from sqlalchemy import create_engine, text

    from streamlit_app import heap, queries

    # The page's server freezes its start-up heap (streamlit_app/heap.py); without the same,
    # this process's own full garbage collections (~100 ms here) would be timed as the query's.
    heap.freeze_startup_heap()
    engine = create_engine(
        queries.to_sqlalchemy_url(dashboard_url),
        connect_args={
            "connect_timeout": 5,
            "options": queries.SESSION_OPTIONS,  # the page's own session settings
        },
    )
    out = []
    with engine.connect() as conn:
        floor = []
        for i in range(reps + 2):
            t = time.perf_counter()
            conn.execute(text("select 1")).fetchall()
            if i >= 2:
                floor.append(1000 * (time.perf_counter() - t))
        for name, sql, params in captured_queries():
            samples, rows = [], 0
            for i in range(reps + 2):
                t = time.perf_counter()
                frame = queries.to_frame(conn.execute(text(sql), params))  # as the page does
                if i >= 2:
                    samples.append(1000 * (time.perf_counter() - t))
                rows = len(frame)
            out.append((name, _ms(samples), rows))
            conn.rollback()
    engine.dispose()
    return out, _ms(floor)


def _ms(samples: list[float]) -> dict:
    return {**summary(samples), "p95": percentile(samples, 95)}


@contextlib.contextmanager
def streamlit_server(app: Path, env_extra: dict[str, str], log: Path):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MOONWATCH_")},
        **env_extra,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            dashboard_argv(port, app),
            cwd=CHECKOUT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{log.read_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("streamlit did not answer within 90 s")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


_RENDERED_JS = """(minCharts) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector('[data-testid="stSkeleton"]')) return false;
  const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]');
  if (charts.length < minCharts) return false;
  for (const c of charts) { if (!c.querySelector('.main-svg')) return false; }
  return document.querySelectorAll('[data-testid="stMarkdownContainer"]').length > 0;
}"""

# The headline: a metric labelled "... price" whose value is in the DOM (a headline card's
# first figure; the ceiling page has one such metric too). A MutationObserver stamps the moment
# it appears: polling from the test would run on the page's main thread, which Plotly keeps
# busy while it draws, and so would see the headline only after the charts.
_HEADLINE_OBSERVER_JS = """(() => {
  const shown = () => [...document.querySelectorAll('[data-testid="stMetric"]')].some(m => {
    const label = m.querySelector('[data-testid="stMetricLabel"]');
    const value = m.querySelector('[data-testid="stMetricValue"]');
    return label && value && / price$/.test(label.innerText.trim()) && value.innerText.trim();
  });
  const observer = new MutationObserver(() => {
    if (window.__headlineAt === undefined && shown()) {
      window.__headlineAt = performance.now();  // ms since this document's navigation began
      observer.disconnect();
    }
  });
  document.addEventListener('DOMContentLoaded', () => observer.observe(
    document.body, {childList: true, subtree: true, characterData: true}));
})()"""


_STATE_JS = """() => ({
  scriptState: document.querySelector('[data-testid="stApp"]')
    ?.getAttribute('data-test-script-state'),
  charts: document.querySelectorAll('[data-testid="stPlotlyChart"]').length,
  drawn: document.querySelectorAll('[data-testid="stPlotlyChart"] .main-svg').length,
  skeletons: document.querySelectorAll('[data-testid="stSkeleton"]').length,
  errors: Array.from(document.querySelectorAll('[data-testid="stException"],'
    + '[data-testid="stAlert"]')).map(e => e.innerText.slice(0, 200)),
})"""

# The ceiling: a trivial Streamlit + Plotly page with one headline metric and one chart, so
# the comparison includes what any Plotly page pays (the plotly.js bundle, one draw).
CEILING_PAGE = """import plotly.graph_objects as go
import streamlit as st

st.title("Ceiling")
st.metric("BTC price", "$60,000.00")
st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3, 4], y=[3, 1, 4, 1], mode="lines")))
"""


# A floor for the dashboard's layout: the trivial page with the dashboard's seven charts at
# about their size (an hourly line per coin for a week, four charts of three coins' ~1,500
# quotes, a top-10 donut and bars), and no query, conversion or widget. What the dashboard
# takes beyond it is its own work. Served twice: as it is, and with the dashboard's hold
# between the headline and the charts in BENCH_HOLD_SECONDS, and Plotly's code loaded during
# it as the dashboard does (streamlit_app/first_paint.py).
HOLD_ENV = "BENCH_HOLD_SECONDS"
# Both floors are one page with different headlines: the same imports, then the headline, then
# the hold and the seven charts. The page names the variable it reads in its first line, so
# its text needs no formatting (its own f-strings keep their braces).
_HELD_FLOOR_IMPORTS = """import os
import time

import numpy as np
import plotly.graph_objects as go
import streamlit as st

"""
_HOLD_THEN_SEVEN_CHARTS = """if float(os.environ.get(HOLD_ENV, "0")):
    from streamlit_app.first_paint import load_chart_code_after_paint

    load_chart_code_after_paint()
time.sleep(float(os.environ.get(HOLD_ENV, "0")))


def lines(points):
    x = np.arange(points)
    return go.Figure([go.Scatter(x=x, y=np.sin(x / (50 + c)), mode="lines") for c in range(3)])


st.plotly_chart(lines(168), key="price")
for chart in range(4):
    st.plotly_chart(lines(1500), key=f"percent-{chart}")
top = [f"coin {i}" for i in range(10)]
st.plotly_chart(go.Figure(go.Pie(labels=top, values=list(range(10, 0, -1)), hole=0.5)))
st.plotly_chart(go.Figure(go.Bar(x=top, y=list(range(10, 0, -1)))))
"""


def _held_floor(headline: str) -> str:
    """A floor page's script: ``headline`` (its own imports first), then the hold and the
    seven charts."""
    return f"HOLD_ENV = {HOLD_ENV!r}\n" + _HELD_FLOOR_IMPORTS + headline + _HOLD_THEN_SEVEN_CHARTS


SEVEN_CHART_PAGE = _held_floor(
    """st.title("Seven charts")
st.metric("BTC price", "$60,000.00")
"""
)

# The floor with the dashboard's first screen: the held seven-chart page whose headline is
# the dashboard's own header, pickers (over 5,000 coins) and three headline cards with their
# sparklines, drawn by the dashboard's functions from fixed values. What this page takes
# beyond the held floor is the first screen's content; what the dashboard takes beyond this
# page is its data work (queries, conversions, its real figures) and what it shows below the
# cards besides the charts (downloads, pipeline health, reconciliation, credits, alerts).
FIRST_SCREEN_PAGE = _held_floor(
    """import pandas as pd

from streamlit_app import charts
from streamlit_app import formatting as fmt
from streamlit_app.header import header, page_setup
from streamlit_app.market import headline, pickers, sparklines

page_setup()
now = pd.Timestamp.now(tz="UTC")
ids = [1, 1027, 5426, *range(10_000, 14_997)]
coins = pd.DataFrame(
    {
        "coin_id": ids,
        "symbol": ["BTC", "ETH", "SOL", *(f"C{c}" for c in ids[3:])],
        "name": ["Bitcoin", "Ethereum", "Solana", *(f"Coin {c}" for c in ids[3:])],
    }
)
header(pd.Series({"source": "simulator", "is_simulated": True, "stamped_at": now}))
coin_ids, cur = pickers(coins, set())
selected = coins[coins["coin_id"].isin(coin_ids)].assign(
    cmc_rank=1,
    stamped_at=now,
    price=60_000.0,
    percent_change_1h=0.5,
    percent_change_24h=-1.25,
    market_cap=1.2e12,
    volume_24h=3.4e10,
    volume_change_24h=2.5,
    market_cap_dominance=55.25,
    circulating_supply=19.8e6,
    max_supply=21e6,
)
colors, labels = charts.coin_colors(selected["coin_id"]), fmt.coin_labels(selected)
cards = headline(selected, cur, colors, labels, 300)
hours = list(pd.date_range(end=now.floor("h"), periods=24, freq="h"))
hourly = pd.DataFrame(
    {
        "coin_id": [c for c in selected["coin_id"] for _ in hours],
        "hour_at": hours * len(selected),
        "close_price": 60_000.0 * (1 + 0.01 * np.sin(np.arange(len(hours) * len(selected)))),
    }
)
sparklines(cards, hourly, cur)
"""
)


def load_once(browser, url: str, min_charts: int) -> tuple[float, float]:
    """One load in a fresh browser context: (seconds until the headline price is in the DOM,
    seconds until the page is fully rendered), both from the start of navigation."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(_HEADLINE_OBSERVER_JS)
    page = context.new_page()
    try:
        start = time.perf_counter()
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        try:
            page.wait_for_function(_RENDERED_JS, arg=min_charts, timeout=120_000, polling=20)
            full = time.perf_counter() - start
            page.wait_for_function("() => window.__headlineAt !== undefined", timeout=10_000)
        except Exception as e:
            state = page.evaluate(_STATE_JS)
            raise RuntimeError(f"page not fully rendered within 120 s: {state}") from e
        return page.evaluate("window.__headlineAt") / 1000, full
    finally:
        context.close()


def interleaved_loads(
    browser, pages: dict[str, tuple[str, int]], app: str, rounds: int
) -> dict[str, dict[str, list]]:
    """Per page of ``pages`` (name -> (url, charts drawn when complete)): its loads, as
    :func:`load_once`, under "first", "warm" and "cold". Each page's first load comes first
    (``app``'s first of all, as a first visitor's); then ``rounds`` rounds, each one cold load
    of ``app`` (its query cache expired: at least REFRESH_SECONDS after its last load), one
    warm load of it right after, and one load of every other page. Interleaved, every page
    meets the same moments of a noisy machine: a page measured in a block of its own can
    land in a quiet or a busy minute and move the ratios by a third."""
    loads: dict[str, dict[str, list]] = {
        name: {"first": [], "warm": [], "cold": []} for name in pages
    }
    others = [name for name in pages if name != app]
    loads[app]["first"].append(load_once(browser, *pages[app]))
    last_app = time.monotonic()
    for name in others:
        loads[name]["first"].append(load_once(browser, *pages[name]))
    for _ in range(rounds):
        time.sleep(max(0.0, last_app + REFRESH_SECONDS + 1 - time.monotonic()))
        loads[app]["cold"].append(load_once(browser, *pages[app]))
        loads[app]["warm"].append(load_once(browser, *pages[app]))
        last_app = time.monotonic()
        for name in others:
            loads[name]["warm"].append(load_once(browser, *pages[name]))
    return loads


def _col(loads: list[tuple[float, float]], i: int) -> dict[str, float]:
    return summary([load[i] for load in loads])


def measure_page(dashboard_db_url: str, quick: bool, section: Section) -> None:
    from playwright.sync_api import sync_playwright

    from streamlit_app.warmup import warm as warm_dashboard

    rounds = 2 if quick else 6
    with tempfile.TemporaryDirectory(prefix="moonwatch-bench-page-") as tmp:
        ceiling_app = Path(tmp) / "ceiling.py"
        ceiling_app.write_text(CEILING_PAGE)
        seven_app = Path(tmp) / "seven.py"
        seven_app.write_text(SEVEN_CHART_PAGE)
        first_screen_app = Path(tmp) / "first_screen.py"
        first_screen_app.write_text(FIRST_SCREEN_PAGE)
        env = {
            "MOONWATCH_DASHBOARD_DB_URL": dashboard_db_url,
            "MOONWATCH_DASHBOARD_REFRESH_SECONDS": str(REFRESH_SECONDS),
        }
        hold = {HOLD_ENV: str(FIRST_PAINT_SECONDS)}
        served = {
            "ceiling": (ceiling_app, {}, 1),
            "seven": (seven_app, {}, 7),
            "held": (seven_app, hold, 7),
            "first_screen": (first_screen_app, hold, 7),
            "app": (CHECKOUT / "streamlit_app" / "app.py", env, 7),
        }
        with sync_playwright() as pw, contextlib.ExitStack() as servers:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            servers.callback(browser.close)
            pages = {
                name: (servers.enter_context(streamlit_server(path, extra, Path(tmp) / name)), n)
                for name, (path, extra, n) in served.items()
            }
            # As `make up` does once the dashboard answers (the registry's after-up hook): one
            # script run, so the first visitor meets a warm server.
            t = time.perf_counter()
            warm_dashboard(pages["app"][0])
            warmup_s = time.perf_counter() - t
            loads = interleaved_loads(browser, pages, "app", rounds)
    ceiling, seven, held = loads["ceiling"], loads["seven"], loads["held"]
    first_screen, app = loads["first_screen"], loads["app"]
    c_warm, a_warm = _col(ceiling["warm"], 1), _col(app["warm"], 1)
    a_cold = _col(app["cold"], 1)
    ratio_warm = a_warm["median"] / c_warm["median"]
    ratio_cold = a_cold["median"] / c_warm["median"]
    seven_ratio = _col(seven["warm"], 1)["median"] / c_warm["median"]
    held_ratio = _col(held["warm"], 1)["median"] / c_warm["median"]
    first_screen_ratio = _col(first_screen["warm"], 1)["median"] / c_warm["median"]

    def row(name: str, loads: dict[str, list], ratios: str) -> str:
        first_h, first_f = loads["first"][0]
        return (
            f"| {name} | {first_h:.2f} / {first_f:.2f} | {fmt_summary(_col(loads['warm'], 0))} "
            f"| {fmt_summary(_col(loads['warm'], 1))} | {fmt_summary(_col(loads['cold'], 0))} "
            f"| {fmt_summary(_col(loads['cold'], 1))} | {ratios} |"
        )

    section.add(
        "",
        "### Page render in headless Chromium",
        "",
        "Each load opens a fresh browser context and times, from the start of navigation, "
        "**headline**: a metric labelled `… price` has its value in the DOM (stamped by a "
        "MutationObserver in the page), and **full**: the script is idle and every Plotly "
        "chart has drawn. The five pages are served at once and loaded interleaved, so each "
        "meets the same moments of this noisy machine: after each page's first load, "
        f"{rounds} rounds of a cold load of the dashboard (its query cache past its "
        f"{REFRESH_SECONDS} s TTL: the page's refresh, half its default here), a warm load "
        "of it right after, and one load of every reference page. The ceiling is a trivial "
        "Streamlit page with one metric and one "
        "Plotly chart, served and loaded the same way; the seven-chart page is that page with"
        " the dashboard's seven charts at about their size (a week of hourly lines, four "
        "charts of three coins' ~1,500 quotes, a top-10 donut and bars): a floor for the "
        "dashboard's layout, with none of its queries, conversions or widgets; served again "
        f"with the dashboard's {FIRST_PAINT_SECONDS} s hold between its headline and its "
        "charts and its loading of Plotly's code during the hold "
        "(`streamlit_app/first_paint.py`: what keeps the headline ahead of Plotly's code), "
        "it is the floor for a page that shows its headline first. The held page once "
        "more with the dashboard's first screen as its headline (its header, pickers over "
        "5,000 coins and three headline cards with sparklines, drawn by the dashboard's own "
        "functions from fixed values, in its wide layout) is the first-screen floor: what the "
        "dashboard takes beyond it is its data work (queries, conversions, its real figures) "
        "and what it shows below the cards besides the charts "
        "(downloads, pipeline health, reconciliation, credits, alerts). No reference page "
        "caches anything, so they have warm loads only, and every ratio divides by the "
        "ceiling's warm median. The "
        f"dashboard's first load follows the launcher's warm-up run ({warmup_s:.2f} s), as "
        "after `make up`.",
        "",
        "| page | first load headline / full s | warm headline s | warm full s "
        "| cold headline s | cold full s | full / ceiling (warm, cold) |",
        "|---|---|---|---|---|---|---|",
        row("one-chart Streamlit + Plotly page (ceiling; warm loads only)", ceiling, "1.00, n/a"),
        row(
            "the same page with seven charts (layout floor; warm loads only)",
            seven,
            f"{seven_ratio:.2f}, n/a",
        ),
        row(
            f"the seven-chart page, charts held {FIRST_PAINT_SECONDS} s behind the headline "
            "(floor with the hold; warm loads only)",
            held,
            f"{held_ratio:.2f}, n/a",
        ),
        row(
            "the held seven-chart page with the dashboard's first screen as its headline "
            "(first-screen floor; warm loads only)",
            first_screen,
            f"{first_screen_ratio:.2f}, n/a",
        ),
        row("Moonwatch dashboard (7 charts)", app, f"{ratio_warm:.2f}, {ratio_cold:.2f}"),
    )
    headline_worst = max(h for h, _ in app["first"] + app["warm"] + app["cold"])
    seven_worst = max(h for h, _ in seven["first"] + seven["warm"])
    first_screen_worst = max(h for h, _ in first_screen["first"] + first_screen["warm"])
    section.check(
        "headline price visible (worst of all dashboard loads)",
        headline_worst,
        Target("<", 2, " s"),
        f"(seven-chart floor page: worst {seven_worst:.2f} s; the first-screen floor: worst "
        f"{first_screen_worst:.2f} s)",
    )
    section.check(
        "dashboard fully rendered / one-chart page (dashboard's cold-cache median)",
        ratio_cold,
        Target("<=", 1.5),
        f"({a_cold['median']:.2f} s / {c_warm['median']:.2f} s; warm "
        f"{ratio_warm:.2f}: {a_warm['median']:.2f} s / {c_warm['median']:.2f} s; floors: "
        f"layout {seven_ratio:.2f}, layout with the headline's hold {held_ratio:.2f}, that "
        f"with the dashboard's first screen {first_screen_ratio:.2f})",
    )
    section.check(
        "first visit after start + warm-up, fully rendered",
        app["first"][0][1],
        Target("<", 10, " s"),
    )


def measure(config, wh, quick: bool) -> Section:
    section = Section("4. Dashboard: mart queries and a fully rendered page")
    seed_other_marts(wh)
    with psycopg.connect(wh.url) as conn:
        sizes = conn.execute(
            "select (select count(*) from raw.crypto_quotes), "
            "(select count(*) from marts.quotes_coins), "
            "(select count(*) from marts.coin_price_hourly), "
            "(select count(*) from marts.latest_quotes)"
        ).fetchone()
    section.add(
        f"Warehouse: {sizes[0]:,} raw quotes; marts.quotes_coins {sizes[1]:,} rows, "
        f"coin_price_hourly {sizes[2]:,}, latest_quotes {sizes[3]:,}; listings snapshot of "
        f"5,000 coins; page's coins {PAGE_COINS} in USD. Read-only dashboard role; each "
        "sample runs the query and turns its rows into a frame as the page does, in this "
        "process with its start-up heap frozen as the page's server's is (streamlit_app/heap.py).",
        "",
    )
    reps = 10 if quick else 20
    results, floor = time_queries(config.dashboard_db_url, reps)
    section.add(
        "| query (streamlit_app/queries.py) | rows | median ms | p95 ms | max ms | p95 / select-1 "
        "p95 |",
        "|---|---|---|---|---|---|",
        f"| `select 1` (ceiling) | 1 | {floor['median']:.1f} | {floor['p95']:.1f} | "
        f"{floor['max']:.1f} | 1.0 |",
    )
    for name, s, rows in results:
        section.add(
            f"| {name} | {rows:,} | {s['median']:.1f} | {s['p95']:.1f} | {s['max']:.1f} | "
            f"{s['p95'] / max(floor['p95'], 0.01):.0f} |"
        )
    slowest = max(results, key=lambda r: r[1]["p95"])
    section.check(
        f"slowest dashboard query p95 at {sizes[0]:,} raw rows",
        slowest[1]["p95"],
        Target("<", 100, " ms", digits=1),
        f"({slowest[0]})",
    )
    try:
        measure_page(config.dashboard_db_url, quick, section)
    except Exception as e:  # noqa: BLE001 - the query figures above still stand
        section.add("", f"Page render measurement FAILED: {type(e).__name__}: {e}"[:1500])
        section.verdict("dashboard page render", "not measured (failed)", "see targets", None)
    return section
