"""End to end: the whole local stack from the launcher, simulator → Kafka → Postgres → dbt →
dashboard, then `down` leaves no process and no port behind.

Nothing is mocked: real Postgres, the tansu broker, the simulator, Airflow 3 (api-server,
scheduler, dag-processor, triggerer) running the real DAGs, dbt through Cosmos, Streamlit, and a
headless Chromium reading the page. Airflow's components run as forks of the fork server, and
the supervisor brings a killed one (and a killed fork server) back.
"""

from __future__ import annotations

import os
import signal
import time

import psycopg
import pytest
import requests

from bench.common import children_map
from moonwatch.dbt import docs as dbt_docs
from moonwatch.stack import airflow, airflow_forkserver
from moonwatch.stack.config import StackConfig
from moonwatch.stack.ephemeral import ephemeral_stack, leftovers, live_pids, run_launcher
from tests.dashboard.conftest import require_chromium
from tests.dashboard.test_browser import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    ERROR_TEXT,
    PLOTLY_CHARTS,
    headline_price,
    money,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.e2e]

WAIT_FOR_DATA_S = 900


def _wait_for_two_producer_runs(url: str) -> list[tuple]:
    deadline = time.monotonic() + WAIT_FOR_DATA_S
    last: tuple = ()
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                last = conn.execute(
                    "select (select count(distinct fetched_at) from marts.quotes_coins),"
                    " (select count(distinct coin_id) from marts.latest_quotes)"
                ).fetchone()
                if last[0] >= 2 and last[1] >= 3:
                    return conn.execute(
                        "select symbol, price, is_simulated from marts.latest_quotes"
                        " where quote_currency = 'USD' order by symbol"
                    ).fetchall()
        except psycopg.Error:
            pass  # marts not built yet
        time.sleep(5)
    raise AssertionError(f"no two producer runs in the marts after {WAIT_FOR_DATA_S} s: {last}")


def _wait_for_dbt_docs(url: str) -> requests.Response:
    """The dbt docs page, once crypto_dbt_docs (on the first listings load) has written it."""
    deadline = time.monotonic() + WAIT_FOR_DATA_S
    while True:
        page = requests.get(url, timeout=10)
        if page.status_code == 200 or time.monotonic() > deadline:
            return page
        time.sleep(5)


def _recent_prices(url: str, symbol: str, quotes: int = 3) -> set[float]:
    """The coin's USD prices of its newest ``quotes`` quotes in marts.quotes_coins."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select price from marts.quotes_coins where symbol = %s and quote_currency = 'USD' "
            "order by last_updated_at desc limit %s",
            (symbol, quotes),
        ).fetchall()
    return {round(float(price), 2) for (price,) in rows}


def _restarted(config: StackConfig, name: str, old: int, timeout: float = 120) -> int:
    """The PID of ``name`` once the supervisor has started it again after ``old`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = live_pids(config).get(name)
        if pid is not None and pid != old:
            return pid
        time.sleep(1)
    raise AssertionError(f"the supervisor did not start {name} again within {timeout:.0f} s")


def _check_components_and_their_restarts(config: StackConfig) -> None:
    """Each component is a fork of the fork server in a session of its own; a killed one comes
    back as a new fork of it, and a killed fork server comes back leaving the components be."""
    pids = live_pids(config)
    forkserver = pids[airflow_forkserver.NAME]
    forked = children_map().get(forkserver, [])
    for component in airflow.COMPONENTS:
        pid = pids[f"airflow-{component}"]
        assert pid in forked, component
        assert os.getsid(pid) == pid, component

    os.kill(pids["airflow-dag-processor"], signal.SIGKILL)
    again = _restarted(config, "airflow-dag-processor", pids["airflow-dag-processor"])
    assert again in children_map().get(forkserver, [])

    os.kill(forkserver, signal.SIGKILL)
    _restarted(config, airflow_forkserver.NAME, forkserver)
    after = live_pids(config)
    kept = {c: after.get(f"airflow-{c}") for c in airflow.COMPONENTS}
    assert kept == {c: pids[f"airflow-{c}"] for c in airflow.COMPONENTS} | {"dag-processor": again}
    supervisor_log = (config.log_dir / "supervisor.log").read_text()
    assert "airflow is not running: starting it again" in supervisor_log


def test_full_stack_simulator_to_dashboard_then_clean_shutdown() -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium_path = require_chromium()
    with ephemeral_stack(MOONWATCH_SYMBOLS="BTC,ETH,SOL") as (config, env):
        # `up` returns only when every service is healthy, so `status` passes at once, even
        # while the DAGs' first runs keep the api-server busy.
        status = run_launcher(env, "status")
        assert "airflow    running   healthy" in status, status
        pids = live_pids(config)
        assert {
            "postgres",
            "broker",
            "simulator",
            "dashboard",
            "airflow-api-server",
            "airflow-scheduler",
            "airflow-dag-processor",
            "airflow-triggerer",
            "airflow-forkserver",
        } <= set(pids)

        # The Airflow API refuses anyone without a token, and a wrong password gets none.
        api = f"{config.airflow_url}/api/v2/dags"
        assert requests.get(api, timeout=10).status_code == 401
        wrong = requests.post(
            f"{config.airflow_url}/auth/token",
            json={"username": "admin", "password": "admin"},
            timeout=10,
        )
        assert wrong.status_code in (401, 403)
        token = requests.post(
            f"{config.airflow_url}/auth/token",
            json={
                "username": "admin",
                "password": config.secrets["MOONWATCH_AIRFLOW_ADMIN_PASSWORD"],
            },
            timeout=10,
        ).json()["access_token"]
        listed = requests.get(api, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert listed.status_code == 200 and "dags" in listed.json()

        latest = _wait_for_two_producer_runs(config.warehouse_url)
        assert [row[0] for row in latest] == ["BTC", "ETH", "SOL"]
        assert all(row[2] for row in latest)  # every row is labelled simulated
        # Those quotes came through the sensor: it succeeded, and wholly in the triggerer (a
        # task instance that ran on a worker has the worker's hostname).
        woken = requests.get(
            f"{config.airflow_url}/api/v2/dags/crypto_quotes_load/dagRuns/~/taskInstances",
            params={"task_id": "wait_for_quotes", "state": "success"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()["task_instances"]
        assert woken, "no wait_for_quotes task instance succeeded"
        assert [ti["hostname"] for ti in woken if ti["hostname"]] == []

        # dbt docs: Cosmos' plugin on the real api-server serves what crypto_dbt_docs wrote,
        # and the UI lists it under Browse.
        docs = _wait_for_dbt_docs(dbt_docs.docs_url(config.airflow_url))
        assert docs.status_code == 200, docs.text[:300]
        manifest = requests.get(
            docs.url.replace("dbt_docs_index.html", "manifest.json"), timeout=10
        )
        assert "model.moonwatch.cap_top_10" in manifest.json()["nodes"]
        plugins = requests.get(
            f"{config.airflow_url}/api/v2/plugins",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()["plugins"]
        views = [v for p in plugins for v in p["external_views"]]
        assert any(v["href"].endswith("/cosmos/moonwatch/dbt_docs_index.html") for v in views)

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(config.dashboard_url, wait_until="domcontentloaded")
                charts = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')
                expect(charts).to_have_count(PLOTLY_CHARTS, timeout=90_000)
                shown = money(headline_price(page, "BTC"))
                recent = _recent_prices(config.warehouse_url, "BTC")
                body = page.locator("body").inner_text()
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "e2e-dashboard.png"), full_page=True)
            finally:
                browser.close()
        # The page reads through a 30 s cache and a quote lands every minute, so it shows one
        # of BTC's last few prices in the mart (three quotes span two minutes and more).
        assert shown in recent, f"page shows {shown}, the mart's newest BTC prices are {recent}"
        assert "SIMULATED DATA" in body
        for marker in ERROR_TEXT:
            assert marker not in body

        _check_components_and_their_restarts(config)
        pids |= {f"{name} (after restarts)": pid for name, pid in live_pids(config).items()}
    assert leftovers(config, pids) == []
