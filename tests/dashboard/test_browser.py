"""The dashboard in a real headless Chromium, served by a real `streamlit run` process."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from moonwatch.stack.config import StackConfig
from moonwatch.stack.process import free_port
from moonwatch.stack.services import dashboard_argv
from streamlit_app import first_paint
from tests.dashboard import marts_data
from tests.dashboard.conftest import PROJECT_ROOT, require_chromium

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
PLOTLY_CHARTS = 7
ERROR_TEXT = ("Traceback", "Exception", "This app has encountered an error", "Error:")


def serve_dashboard(
    db_url: str, log: Path, refresh_seconds: int = 30
) -> tuple[subprocess.Popen, str]:
    """`streamlit run` the app on a free loopback port, as the launcher does (cwd = root)."""
    port = free_port()
    env = {
        **os.environ,
        "MOONWATCH_DASHBOARD_DB_URL": db_url,
        "MOONWATCH_DASHBOARD_REFRESH_SECONDS": str(refresh_seconds),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            dashboard_argv(port),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"streamlit exited early:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                return process, url
        except requests.RequestException:
            pass
        time.sleep(0.3)
    process.terminate()
    raise AssertionError(f"streamlit did not answer within 60 s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def served(pg: StackConfig, loader, tmp_path: Path) -> Iterator[tuple[str, marts_data.SmallData]]:
    data = marts_data.fill_small(loader)
    process, url = serve_dashboard(
        pg.dashboard_db_url, tmp_path / "streamlit.log", refresh_seconds=5
    )
    try:
        yield url, data
    finally:
        stop(process)
        marts_data.drop_marts(loader)


def screenshot(page, path: Path, width: int = 1440) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the viewport to fit."""
    measure = (
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
        "[data-testid=stMainBlockContainer]')].map(e => e.scrollHeight), 900)"
    )
    for _ in range(2):  # the page reflows at the new size: measure again
        page.set_viewport_size({"width": width, "height": int(page.evaluate(measure)) + 80})
        page.wait_for_timeout(1500)  # Plotly redraws at the new size
    page.screenshot(path=str(path), full_page=True)


CHARTS = '[data-testid="stPlotlyChart"] .js-plotly-plot'
SPARKLINES = '[data-testid="stHtml"] img[src^="data:image/svg+xml"]'


@contextmanager
def dashboard_page(url: str) -> Iterator:
    """A headless Chromium page on the dashboard at ``url``, once all its charts are there."""
    from playwright.sync_api import expect, sync_playwright

    chromium_path = require_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url, wait_until="domcontentloaded")
            expect(page.locator(CHARTS)).to_have_count(PLOTLY_CHARTS, timeout=60_000)
            yield page
        finally:
            browser.close()


def headline_price(page, symbol: str) -> str:
    metric = page.locator('[data-testid="stMetric"]', has_text=f"{symbol} price").first
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def money(text: str) -> float:
    return float(re.sub(r"[^0-9.]", "", text))


def test_browser_shows_charts_and_converts_currency(served, loader):
    from playwright.sync_api import expect

    url, data = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with dashboard_page(url) as page:
        charts = page.locator(CHARTS)
        page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)

        body = page.locator("body").inner_text()
        assert not page.locator('[data-testid="stException"]').count()
        for marker in ERROR_TEXT:
            assert marker not in body, f"{marker!r} on the page:\n{body[:2000]}"
        assert "SIMULATED DATA" in body
        # Each headline card draws its sparkline (an SVG image the sanitiser lets through).
        sparklines = page.locator(SPARKLINES)
        expect(sparklines).to_have_count(3)
        drawn = "els => els.map(e => e.complete && e.naturalWidth)"
        page.wait_for_function(
            f"[...document.querySelectorAll('{SPARKLINES}')].every(e => e.complete)"
        )
        assert sparklines.evaluate_all(drawn) == [120, 120, 120]  # decoded, not a broken image
        usd = headline_price(page, "BTC")
        assert usd == "$60,000.00"

        page.get_by_role("radiogroup", name="Currency").get_by_role(
            "radio", name="EUR", exact=True
        ).click()
        expect(
            page.locator('[data-testid="stMetric"]', has_text="BTC price").first
        ).to_contain_text("€", timeout=30_000)
        eur = headline_price(page, "BTC")
        assert money(eur) == pytest.approx(money(usd) * data.rates["EUR"])

        # The headline figures download as CSV, in the currency on the page.
        with page.expect_download() as download:
            page.get_by_role("button", name="These quotes as CSV (EUR)").click()
        assert download.value.suggested_filename == "moonwatch-quotes-eur.csv"
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        assert [r["symbol"] for r in rows] == ["BTC", "ETH", "SOL"]
        assert float(rows[0]["price"]) == pytest.approx(60000 * data.rates["EUR"])
        assert {r["currency"] for r in rows} == {"EUR"}
        expect(charts).to_have_count(PLOTLY_CHARTS, timeout=30_000)
        screenshot(page, ARTIFACTS / "dashboard.png")

        # The page refreshes itself (fragment run_every = 5 s here, cache ttl the same).
        loader.execute("update marts.latest_quotes set price = 61000 where symbol = 'BTC'")
        expect(
            page.locator('[data-testid="stMetric"]', has_text="BTC price").first
        ).to_contain_text("€56,120.00", timeout=30_000)  # 61000 x 0.92
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


# Script that would run in the page if either value became markup: the iframe's srcdoc shares
# the page's origin (so it can reach `parent`), the image fails to load and runs its handler.
HOSTILE_NAME = '<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>'
HOSTILE_SYMBOL = '"><img src=x onerror="window.__pwned=2">'


@pytest.fixture
def served_hostile(pg: StackConfig, loader, tmp_path: Path) -> Iterator[str]:
    """The page over marts where SOL (preselected, in both top 10s) has a hostile symbol and
    name, as a message from a compromised or spoofed source would put them there."""
    marts_data.fill_small(loader)
    for table in ("latest_quotes", "quotes_coins", "coin_price_hourly", "cap_top_10", "vol_top_10"):
        loader.execute(
            f"update marts.{table} set symbol = %s, name = %s where coin_id = 5426",
            (HOSTILE_SYMBOL, HOSTILE_NAME),
        )
        # No coin keeps a default ticker, so a page that preselects by ticker (as before the
        # fix) falls back to the first three by rank: the hostile coin is shown either way.
        loader.execute(f"update marts.{table} set symbol = symbol || '2' where coin_id <> 5426")
    process, url = serve_dashboard(pg.dashboard_db_url, tmp_path / "streamlit.log")
    try:
        yield url
    finally:
        stop(process)
        marts_data.drop_marts(loader)


def test_browser_shows_a_hostile_name_and_symbol_as_text(served_hostile):
    from playwright.sync_api import expect

    with dashboard_page(served_hostile) as page:
        # Three headline cards of seven figures each: the page has drawn every coin's values.
        expect(page.locator('[data-testid="stMetric"]')).to_have_count(3 * 7 + 3)
        # None of the hostile text became an element, and no script ran.
        assert page.locator("iframe").count() == 0
        assert page.locator('img[src="x"], img[onerror], [srcdoc]').count() == 0
        assert page.evaluate("window.__pwned") is None
        # The headline card shows both values as the characters they are...
        card = page.locator('[data-testid="stHtml"]', has_text=HOSTILE_NAME)
        expect(card).to_have_count(1)
        expect(card).to_contain_text(HOSTILE_SYMBOL)
        expect(
            page.locator('[data-testid="stMetric"]', has_text=f"{HOSTILE_SYMBOL} price")
        ).to_have_count(1)
        # ...and so does the price chart's legend.
        assert HOSTILE_SYMBOL in page.locator(CHARTS).first.inner_text()


# Held by the test while the page runs: any read of SOL's hourly prices waits for it.
CHART_GATE_LOCK = 4242


@pytest.fixture
def served_slow_chart(pg: StackConfig, loader, tmp_path: Path) -> Iterator[tuple[str, object]]:
    """The page over marts whose hourly prices (the price chart's and the sparklines' query)
    cannot be read while the test holds an advisory lock: ``marts.coin_price_hourly`` becomes
    a view whose SOL rows wait for it. Its first row is BTC's, so the page's check that the
    mart has rows (``exists``) passes at once; the chart's query, which needs SOL's rows, waits.
    Yields the URL and a function that lets the chart's query go on."""
    import psycopg

    marts_data.fill_small(loader)
    loader.execute("alter table marts.coin_price_hourly rename to coin_price_hourly_rows")
    loader.execute(
        "create function marts.chart_gate(coin integer) returns boolean language plpgsql "
        "volatile as $$ begin if coin = 5426 then "
        f"perform pg_advisory_xact_lock_shared({CHART_GATE_LOCK}); end if; return true; end $$"
    )
    loader.execute(
        "create view marts.coin_price_hourly as select * from marts.coin_price_hourly_rows "
        "where marts.chart_gate(coin_id)"
    )
    gate = psycopg.connect(pg.warehouse_url, autocommit=True)
    gate.execute("select pg_advisory_lock(%s)", (CHART_GATE_LOCK,))

    def release() -> None:
        gate.execute("select pg_advisory_unlock(%s)", (CHART_GATE_LOCK,))

    process, url = serve_dashboard(pg.dashboard_db_url, tmp_path / "streamlit.log")
    try:
        yield url, release
    finally:
        stop(process)
        gate.close()
        marts_data.drop_marts(loader)
        loader.execute("drop table if exists marts.coin_price_hourly_rows cascade")
        loader.execute("drop function if exists marts.chart_gate(integer)")


def test_browser_shows_the_headline_while_a_chart_query_waits(served_slow_chart):
    """The headline prices come from the latest quotes alone, and the page draws them before
    it reads anything for its charts: a chart's query that takes long (here: held by a lock
    in Postgres) never keeps the prices off the screen."""
    from playwright.sync_api import expect, sync_playwright

    url, release = served_slow_chart
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=require_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url, wait_until="domcontentloaded")
            price = page.locator('[data-testid="stMetric"]', has_text="BTC price").first
            expect(price.locator('[data-testid="stMetricValue"]')).to_have_text(
                "$60,000.00", timeout=60_000
            )
            expect(page.locator('[data-testid="stMetric"]', has_text="SOL price")).to_have_count(1)
            # The chart's query is still waiting: no chart and no sparkline yet.
            assert page.locator(CHARTS).count() == 0
            assert page.locator(SPARKLINES).count() == 0
            release()
            # Then the charts and the sparklines follow on the same page run.
            expect(page.locator(CHARTS)).to_have_count(PLOTLY_CHARTS, timeout=60_000)
            expect(page.locator(SPARKLINES)).to_have_count(3)
            assert not page.locator('[data-testid="stException"]').count()
        finally:
            browser.close()


_HEADLINE_STAMP_JS = """(() => {
  const watch = new MutationObserver(() => {
    if (document.querySelector('[data-testid="stMetricValue"]')) {
      window.__headlineAt = performance.now();
      watch.disconnect();
    }
  });
  document.addEventListener('DOMContentLoaded',
    () => watch.observe(document.body, {childList: true, subtree: true}));
})()"""
_PLOTLY_CODE_FETCHES_JS = """() => performance.getEntriesByType('resource')
  .filter(e => /\\/static\\/js\\/PlotlyChart\\.[^/]*\\.js$/.test(e.name))
  .map(e => e.startTime)"""


def test_browser_loads_the_charts_code_after_the_headline_and_before_the_charts(
    served_slow_chart,
):
    """Plotly's code (the page's largest) loads while the charts are still on their way, not
    once they arrive, and only after a headline value is on the page, so it never holds the
    prices back. Here the charts cannot be sent at all (their query waits on a lock), so the
    browser can only have asked for that code because the page told it to."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    url, release = served_slow_chart
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=require_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.add_init_script(_HEADLINE_STAMP_JS)
            page.goto(url, wait_until="domcontentloaded")
            expect(page.locator('[data-testid="stMetricValue"]').first).to_be_visible(
                timeout=60_000
            )
            try:
                page.wait_for_function(
                    f"() => ({_PLOTLY_CODE_FETCHES_JS})().length > 0", timeout=20_000
                )
            except PlaywrightTimeout as e:
                raise AssertionError(
                    "the browser never asked for Plotly's code while the charts waited"
                ) from e
            assert page.locator(CHARTS).count() == 0  # still waiting on the lock
            fetched = page.evaluate(_PLOTLY_CODE_FETCHES_JS)
            assert len(fetched) == 1
            assert fetched[0] >= page.evaluate("window.__headlineAt")
            # The script's element takes no room on the page.
            loader = page.locator(f".st-key-{first_paint._LOADER_KEY}")
            expect(loader).to_have_count(1)
            expect(loader).to_be_hidden()
            release()
            expect(page.locator(CHARTS)).to_have_count(PLOTLY_CHARTS, timeout=60_000)
            # The charts used the module already loaded: the browser fetched it once.
            assert len(page.evaluate(_PLOTLY_CODE_FETCHES_JS)) == 1
            assert not page.locator('[data-testid="stException"]').count()
        finally:
            browser.close()


def test_browser_coin_picker_opens_from_a_button_that_names_the_picks(served):
    """The list of every tracked coin (5,000 at scale) is drawn only when someone opens the
    picker; the closed button says which coins the page shows, and picking one there adds its
    headline card and renames the button."""
    from playwright.sync_api import expect

    url, _ = served
    with dashboard_page(url) as page:
        button = page.get_by_role(
            "button", name="Coins: BTC · Bitcoin, ETH · Ethereum, SOL · Solana"
        )
        expect(button).to_have_count(1)
        # Closed: no multiselect in the DOM at all, though the headline cards are drawn.
        expect(page.locator('[data-testid="stMetric"]', has_text="SOL price")).to_have_count(1)
        assert page.locator('[data-testid="stMultiSelect"]').count() == 0

        button.click()
        picker = page.locator('[data-testid="stMultiSelect"]')
        expect(picker).to_have_count(1)
        picker.locator("input").fill("DOGE")
        page.get_by_role("option", name="DOGE · Dogecoin").click()
        expect(page.locator('[data-testid="stMetric"]', has_text="DOGE price")).to_have_count(
            1, timeout=30_000
        )
        # (The open popover hides the rest of the page from the accessibility tree.)
        expect(page.locator('[data-testid="stPopover"]')).to_contain_text(
            "Coins: BTC · Bitcoin, ETH · Ethereum, SOL · Solana +1 more", timeout=30_000
        )
