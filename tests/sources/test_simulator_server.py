"""The simulator over HTTP: CoinMarketCap shapes, credits, errors, faults, Frankfurter."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from moonwatch.sources.simulator import serve_in_thread
from moonwatch.sources.simulator.control import MAX_FAULTS, TOKEN_ENV, TOKEN_HEADER
from moonwatch.stack import environment
from moonwatch.stack.config import StackConfig
from moonwatch.stack.process import free_port
from tests.simulator import SIM_TOKEN, sim_control

from .support import fixed_clock

QUOTES = "/v1/cryptocurrency/quotes/latest"
LISTINGS = "/v1/cryptocurrency/listings/latest"


def get(server, path, **params):
    return requests.get(server.url + path, params=params, timeout=10)


def test_simulator_same_seed_and_clock_serve_identical_json(simulator):
    twin = serve_in_thread(seed=42, clock=fixed_clock)
    other = serve_in_thread(seed=7, clock=fixed_clock)
    try:
        for path, params in [(LISTINGS, {"limit": "50"}), (QUOTES, {"symbol": "BTC,ETH"})]:
            mine = get(simulator, path, **params).content
            assert get(twin, path, **params).content == mine
            assert get(other, path, **params).content != mine
    finally:
        twin.stop()
        other.stop()


def test_simulator_marks_every_response_simulated(simulator):
    for path, params in [("/health", {}), (QUOTES, {"id": "1"}), ("/frankfurter/latest", {})]:
        response = get(simulator, path, **params)
        assert response.headers["X-Moonwatch-Simulated"] == "true"
        assert "simulated data" in response.text


def test_simulator_credit_count_follows_the_rules(simulator):
    listings = get(simulator, LISTINGS, limit="201", convert="USD,EUR").json()
    assert len(listings["data"]) == 201 and listings["status"]["credit_count"] == 3 + 1
    assert set(listings["data"][0]["quote"]) == {"USD", "EUR"}
    quotes = get(simulator, QUOTES, id="1,1027,825").json()
    assert quotes["status"]["credit_count"] == 1


def test_simulator_v2_lists_every_coin_sharing_a_ticker(simulator):
    data = get(simulator, "/v2/cryptocurrency/quotes/latest", symbol="SOL").json()["data"]
    assert [c["id"] for c in data["SOL"]] == [5426, 90001]
    by_id = get(simulator, "/v2/cryptocurrency/quotes/latest", id="5426").json()["data"]
    assert by_id["5426"]["symbol"] == "SOL"


def test_simulator_v3_returns_a_list_with_quote_list(simulator):
    data = get(simulator, "/v3/cryptocurrency/quotes/latest", id="1,1027").json()["data"]
    assert [c["id"] for c in data] == [1, 1027]
    assert data[0]["quote"][0]["symbol"] == "USD" and data[0]["quote"][0]["price"] > 0


def test_simulator_bad_parameters_are_400(simulator):
    cases = [
        (QUOTES, {}),
        (QUOTES, {"id": "1", "symbol": "BTC"}),
        (QUOTES, {"id": "abc"}),
        (QUOTES, {"symbol": "NOPEX"}),
        (QUOTES, {"id": "1", "convert": "XYZ"}),
        (LISTINGS, {"limit": "0"}),
        (LISTINGS, {"limit": "5001"}),
        (LISTINGS, {"sort": "bogus"}),
    ]
    for path, params in cases:
        response = get(simulator, path, **params)
        assert response.status_code == 400, params
        assert response.json()["status"]["error_code"] == 400


def test_simulator_skip_invalid_drops_unknown_symbols(simulator):
    data = get(simulator, QUOTES, symbol="BTC,NOPEX", skip_invalid="true").json()["data"]
    assert list(data) == ["BTC"]


def test_simulator_listings_sort_and_pages(simulator):
    asc = get(simulator, LISTINGS, sort="price", sort_dir="asc", limit="20").json()["data"]
    prices = [c["quote"]["USD"]["price"] for c in asc]
    assert prices == sorted(prices)
    page2 = get(simulator, LISTINGS, start="11", limit="10").json()["data"]
    assert [c["cmc_rank"] for c in page2] == list(range(11, 21))


def test_simulator_requires_key_when_configured(simulator):
    sim_control(simulator.url, "POST", "/_sim/config", {"require_key": True}).raise_for_status()
    missing = get(simulator, QUOTES, id="1")
    assert missing.status_code == 401 and missing.json()["status"]["error_code"] == 1002
    keyed = requests.get(
        simulator.url + QUOTES, params={"id": "1"}, headers={"X-CMC_PRO_API_KEY": "any"}, timeout=5
    )
    assert keyed.status_code == 200


def test_simulator_faults_are_injected_then_cleared(simulator):
    fault = {"status": 429, "error_code": 1008, "count": 2, "retry_after": 5}
    assert sim_control(simulator.url, "POST", "/_sim/faults", fault).status_code == 201
    first = get(simulator, QUOTES, id="1")
    assert first.status_code == 429 and first.headers["Retry-After"] == "5"
    assert first.json()["status"]["error_code"] == 1008
    assert get(simulator, QUOTES, id="1").status_code == 429
    assert get(simulator, QUOTES, id="1").status_code == 200
    sim_control(simulator.url, "POST", "/_sim/faults", {"status": 500, "count": None})
    assert get(simulator, QUOTES, id="1").status_code == 500
    sim_control(simulator.url, "DELETE", "/_sim/faults").raise_for_status()
    assert get(simulator, QUOTES, id="1").status_code == 200
    seen = sim_control(simulator.url, "GET", "/_sim/requests").json()["requests"]
    assert seen[QUOTES] == 5


def test_simulator_frankfurter_shape(simulator):
    body = get(simulator, "/frankfurter/latest", base="USD", symbols="EUR,SEK,JPY").json()
    assert body["base"] == "USD" and body["amount"] == 1.0 and body["date"] == "2025-05-07"
    assert set(body["rates"]) == {"EUR", "SEK", "JPY"}
    assert get(simulator, "/frankfurter/latest", symbols="XXX").status_code == 404


# -- fault control: off unless asked for, token and JSON required, every parameter bounded --------


def test_simulator_control_routes_are_404_without_a_token():
    server = serve_in_thread(seed=42, clock=fixed_clock)  # as `make up` starts it
    try:
        for method, path in [
            ("POST", "/_sim/faults"),
            ("POST", "/_sim/config"),
            ("GET", "/_sim/faults"),
            ("GET", "/_sim/requests"),
            ("DELETE", "/_sim/faults"),
        ]:
            # Even with a token in hand: control that was not asked for does not exist.
            answer = sim_control(server.url, method, path, {"delay_seconds": 1})
            assert answer.status_code == 404, (method, path)
        assert server.faults == [] and server.require_key is False
        assert get(server, "/health").status_code == 200
    finally:
        server.stop()


def test_simulator_control_refuses_a_cross_site_text_plain_post(simulator):
    # What a web page can send without a CORS preflight: text/plain, no custom header.
    forged = requests.post(
        simulator.url + "/_sim/faults",
        data='{"delay_seconds": 3}',
        headers={"Content-Type": "text/plain"},
        timeout=5,
    )
    assert forged.status_code == 401 and "X-Moonwatch-Sim-Token" in forged.json()["error"]
    # The token alone is not enough either: a control POST must say it is JSON.
    typed = requests.post(
        simulator.url + "/_sim/faults",
        data='{"delay_seconds": 3}',
        headers={"Content-Type": "text/plain", TOKEN_HEADER: SIM_TOKEN},
        timeout=5,
    )
    assert typed.status_code == 415 and "application/json" in typed.json()["error"]
    assert simulator.faults == []


def test_simulator_control_refuses_a_wrong_token(simulator):
    for method, path, body in [
        ("POST", "/_sim/faults", {"status": 500}),
        ("POST", "/_sim/config", {"require_key": True}),
        ("GET", "/_sim/requests", None),
        ("DELETE", "/_sim/faults", None),
    ]:
        answer = sim_control(simulator.url, method, path, body, token="not-the-token")
        assert answer.status_code == 403, (method, path)
    assert simulator.faults == [] and simulator.require_key is False


@pytest.mark.parametrize(
    ("fault", "bound"),
    [
        ({"delay_seconds": 86_400}, "from 0 to 30"),
        ({"delay_seconds": -1}, "from 0 to 30"),
        ({"delay_seconds": "3"}, "delay_seconds"),
        ({"count": 10**9}, "from 1 to 10000"),
        ({"count": 0}, "from 1 to 10000"),
        ({"status": 1000}, "from 100 to 599"),
        ({"status": True}, "from 100 to 599"),
        ({"retry_after": 1e9}, "from 0 to 86400"),
        ({"body": "x" * 20_000}, "at most 16384 characters"),
        ({"error_message": "x" * 1000}, "at most 500 characters"),
        ({"path_prefix": "health"}, "starting with"),
        ({"sleep_forever": True}, "unknown fault fields"),
    ],
)
def test_simulator_control_bounds_every_fault_parameter(simulator, fault, bound):
    answer = sim_control(simulator.url, "POST", "/_sim/faults", fault)
    assert answer.status_code == 400 and bound in answer.json()["error"], answer.text
    assert simulator.faults == []


def test_simulator_control_bounds_the_body_and_the_number_of_faults(simulator):
    huge = requests.post(
        simulator.url + "/_sim/faults",
        data=b"{" + b" " * 100_000 + b"}",
        headers={"Content-Type": "application/json", TOKEN_HEADER: SIM_TOKEN},
        timeout=5,
    )
    assert huge.status_code == 413 and "at most 65536 bytes" in huge.json()["error"]
    for _ in range(MAX_FAULTS):
        assert sim_control(simulator.url, "POST", "/_sim/faults", {"status": 500}).ok
    more = sim_control(simulator.url, "POST", "/_sim/faults", {"status": 500})
    assert more.status_code == 400 and f"at most {MAX_FAULTS} faults" in more.json()["error"]
    config = sim_control(simulator.url, "POST", "/_sim/config", {"require_key": "yes"})
    assert config.status_code == 400 and simulator.require_key is False


def _run_simulator(extra_env: dict[str, str]) -> tuple[int, int]:
    """Start ``python -m moonwatch.sources.simulator`` as the launcher does; return what
    ``GET /_sim/requests`` answers without and with the test token."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV} | extra_env
    argv = [sys.executable, "-m", "moonwatch.sources.simulator", "--port", str(port)]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                requests.get(url + "/health", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stderr.read().decode()
                time.sleep(0.05)
        bare = requests.get(url + "/_sim/requests", timeout=5).status_code
        return bare, sim_control(url, "GET", "/_sim/requests").status_code
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_simulator_process_turns_control_on_only_with_the_token_in_its_environment():
    assert _run_simulator({}) == (404, 404)  # how `make up` runs it
    assert _run_simulator({TOKEN_ENV: SIM_TOKEN}) == (401, 200)


def test_launcher_hands_the_simulator_the_token_only_when_the_operator_set_it(tmp_path):
    base = {"MOONWATCH_HOME": str(tmp_path / "home"), "PATH": os.environ.get("PATH", "")}
    assert TOKEN_ENV not in environment.simulator_env(StackConfig.from_env(base))  # make up
    chaos = StackConfig.from_env(base | {TOKEN_ENV: SIM_TOKEN})
    assert environment.simulator_env(chaos)[TOKEN_ENV] == SIM_TOKEN
    # Only the simulator needs it: no other service's environment carries it.
    for other in (environment.dashboard_env, environment.airflow_task_env):
        assert TOKEN_ENV not in other(chaos)


def test_simulator_process_holds_only_the_standard_library():
    """It lives as long as the stack: the HTTP client, pydantic and tenacity, which the rest of
    ``moonwatch.sources`` and the settings bring, would hold ~16 MiB in it for nothing."""
    probe = (
        "import sys, moonwatch.sources.simulator.__main__ as m\n"
        "print(' '.join(sorted({n.split('.')[0] for n in sys.modules}"
        " - set(sys.stdlib_module_names))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(out.stdout.split())
    assert "moonwatch" in loaded
    assert not loaded & {"pydantic", "pydantic_core", "pydantic_settings", "requests", "tenacity"}


def test_simulator_run_by_hand_binds_the_settings_default_port(caplog):
    """Without --port it takes MOONWATCH_SIM_PORT's default: seen here by holding that port
    first (or finding it held by a running stack), so it binds nothing and says which."""
    from moonwatch.settings import DEFAULT_SIM_PORT
    from moonwatch.sources.simulator.__main__ import main

    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", DEFAULT_SIM_PORT))
        holder.listen()
    except OSError:
        pass  # a stack's simulator holds it already
    try:
        assert main([]) == 1
    finally:
        holder.close()
    assert f"cannot bind 127.0.0.1:{DEFAULT_SIM_PORT}" in caplog.text
