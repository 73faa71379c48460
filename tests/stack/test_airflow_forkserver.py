"""The Airflow fork server (``moonwatch.stack.airflow_forkserver``): what it forks, for whom,
and what it refuses. The memory its sharing saves is measured by ``make bench`` (PSS at rest);
the full-stack test runs the four real components through it, and its supervisor restarts.

Here a real fork server imports Airflow in a fresh interpreter; only the program its children
run is replaced, by a probe that reports where it stands and waits: Airflow's components need
a metadata database and an api-server, which the full-stack test has and this one does not."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.common import children_map
from moonwatch.errors import StackError
from moonwatch.stack import airflow_forkserver
from moonwatch.stack.airflow_forkserver import component_process, request_component
from moonwatch.stack.process import wait_until

pytestmark = pytest.mark.integration

_SERVER = """
import os, sys, time
from setproctitle import setproctitle
from moonwatch.stack import airflow_forkserver as fs

def probe(args):
    setproctitle("airflow " + " ".join(args))
    print(f"args={','.join(args)} sid={os.getsid(0)} pid={os.getpid()} ppid={os.getppid()} "
          f"stdin={os.read(0, 10)!r}", flush=True)
    time.sleep(600)
    return 0

fs.run_airflow = probe
sys.exit(fs.main(sys.argv[1:]))
"""


@pytest.fixture
def forkserver(tmp_path: Path) -> Iterator[subprocess.Popen]:
    run_dir, log_dir = tmp_path / "run", tmp_path / "logs"
    run_dir.mkdir()
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow")}
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(run_dir), str(log_dir)],
        env=env,
        stdout=(tmp_path / "forkserver.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: airflow_forkserver.ready(run_dir), "the fork server", 120)
        yield server
    finally:
        for pid in _children(server.pid):
            # A component forked just now may not lead its own group yet (its setsid comes
            # after the fork), and one may exit meanwhile: the group, else the process, if any.
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        server.kill()
        server.wait()


def _children(pid: int) -> list[int]:
    return children_map().get(pid, [])


def _gone(pid: int) -> bool:
    """Exited and reaped: a zombie still has its /proc entry."""
    return not Path(f"/proc/{pid}").exists()


def test_a_component_runs_in_its_own_session_with_its_log_and_pid_file_and_is_reaped(
    forkserver: subprocess.Popen, tmp_path: Path
) -> None:
    run_dir, log_dir = tmp_path / "run", tmp_path / "logs"
    pid = request_component(run_dir, "scheduler")
    process = component_process(run_dir, log_dir, "scheduler")
    assert process.pid() == pid  # its PID file, written before the answer
    log = log_dir / "airflow-scheduler.log"
    wait_until(lambda: "args=" in log.read_text(), "the component's first line", 30)
    facts = dict(pair.split("=", 1) for pair in log.read_text().split())
    assert facts["args"] == "scheduler,--skip-serve-logs"  # the table's, nothing sent
    assert int(facts["pid"]) == pid
    assert int(facts["sid"]) == pid  # its own session: stopping it stops its group only
    assert int(facts["ppid"]) == forkserver.pid  # a fork of the server that imported Airflow
    assert facts["stdin"] == "b''"  # nothing of the launcher's standard input
    assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"airflow scheduler")
    assert log.stat().st_mode & 0o777 == 0o600

    # Asked again while it runs (the supervisor and `up` at once): the same one, no second.
    assert request_component(run_dir, "scheduler") == pid
    assert _children(forkserver.pid) == [pid]

    assert process.stop(timeout=10)
    wait_until(lambda: _gone(pid), "the server to reap its stopped component", 10)
    assert request_component(run_dir, "scheduler") != pid  # stopped: a new one


def test_only_known_components_are_forked(forkserver: subprocess.Popen, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    for request in ("sh -c 'touch /tmp/pwned'", "../scheduler", "celery worker", "x" * 5000):
        with pytest.raises(StackError, match="unknown component") as refused:
            request_component(run_dir, request)
        assert "api-server, scheduler, dag-processor, triggerer" in str(refused.value)
    assert _children(forkserver.pid) == []
    assert not list(run_dir.glob("*.pid"))
    # An asker that leaves before the answer costs nothing but its own request.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(airflow_forkserver.socket_path(run_dir)))
        client.sendall(b"triggerer")
    wait_until(lambda: len(_children(forkserver.pid)) == 1, "the triggerer", 10)
    assert request_component(run_dir, "triggerer") == _children(forkserver.pid)[0]


def test_the_server_stops_on_sigterm_and_leaves_its_components_running(
    forkserver: subprocess.Popen, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    pid = request_component(run_dir, "dag-processor")
    forkserver.terminate()
    assert forkserver.wait(timeout=10) == 0
    assert not airflow_forkserver.socket_path(run_dir).exists()
    time.sleep(0.5)
    assert Path(f"/proc/{pid}").exists()  # the supervisor starts a new server; this one runs on
    os.killpg(pid, signal.SIGKILL)
