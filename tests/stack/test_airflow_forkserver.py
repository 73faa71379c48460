"""The Airflow fork server (``moonwatch.stack.airflow_forkserver``): what it forks, for whom,
and what it refuses. The memory its sharing saves is measured by ``make bench`` (PSS at rest);
the full-stack test runs the four real components through it, and its supervisor restarts.

Here a real fork server imports Airflow in a fresh interpreter; only the program its children
run is replaced, by a probe that reports where it stands and waits: Airflow's components need
a metadata database and an api-server, which the full-stack test has and this one does not."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from moonwatch.stack import airflow_forkserver
from moonwatch.stack.process import wait_until

pytestmark = pytest.mark.integration

_SERVER = """
import os, sys, time
from setproctitle import getproctitle, setproctitle
from moonwatch.stack import airflow_forkserver as fs

def probe(args):
    setproctitle("airflow " + " ".join(args))
    print(f"args={','.join(args)} sid={os.getsid(0)} pid={os.getpid()} ppid={os.getppid()} "
          f"stdin={os.read(0, 10)!r}", flush=True)
    time.sleep(600)
    return 0

fs.run_airflow = probe
sys.exit(fs.main([sys.argv[1]]))
"""


@pytest.fixture
def forkserver(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Path]]:
    socket_path = tmp_path / "forkserver.sock"
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow")}
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(socket_path)],
        env=env,
        stdout=(tmp_path / "forkserver.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: airflow_forkserver.ready(socket_path), "the fork server", 120)
        yield server, socket_path
    finally:
        for pid in _children(server.pid):
            os.killpg(pid, signal.SIGKILL)
        server.kill()
        server.wait()


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _fork(socket_path: Path, component: str, log: Path) -> int:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return airflow_forkserver.fork_component(socket_path, component, fd)
    finally:
        os.close(fd)


def _gone(pid: int) -> bool:
    """Exited and reaped: a zombie still has its /proc entry."""
    return not Path(f"/proc/{pid}").exists()


def test_a_component_runs_in_its_own_session_logs_where_asked_and_is_reaped(
    forkserver: tuple[subprocess.Popen, Path], tmp_path: Path
) -> None:
    server, socket_path = forkserver
    log = tmp_path / "scheduler.log"
    pid = _fork(socket_path, "scheduler", log)
    wait_until(lambda: "args=" in log.read_text(), "the component's first line", 30)
    facts = dict(pair.split("=", 1) for pair in log.read_text().split())
    assert facts["args"] == "scheduler,--skip-serve-logs"  # the table's, nothing sent
    assert int(facts["pid"]) == pid
    assert int(facts["sid"]) == pid  # its own session: stopping it stops its group only
    assert int(facts["ppid"]) == server.pid  # a fork of the server that imported Airflow
    assert facts["stdin"] == "b''"  # nothing of the launcher's standard input
    assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"airflow scheduler")

    os.killpg(pid, signal.SIGTERM)
    wait_until(lambda: _gone(pid), "the server to reap its stopped component", 10)


def test_only_known_components_with_a_log_are_forked(
    forkserver: tuple[subprocess.Popen, Path], tmp_path: Path
) -> None:
    server, socket_path = forkserver
    for request in ("sh -c 'touch /tmp/pwned'", "../scheduler", "celery worker"):
        with pytest.raises(RuntimeError, match="unknown component") as refused:
            _fork(socket_path, request, tmp_path / "x.log")
        assert "api-server, scheduler, dag-processor, triggerer" in str(refused.value)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(socket_path))
        client.sendall(b"triggerer")  # no log file passed along
        assert b"no log file" in client.recv(200)
    assert _children(server.pid) == []
    # And it still serves.
    pid = _fork(socket_path, "triggerer", tmp_path / "triggerer.log")
    assert _children(server.pid) == [pid]


def test_the_server_stops_on_sigterm_and_leaves_its_components_running(
    forkserver: tuple[subprocess.Popen, Path], tmp_path: Path
) -> None:
    server, socket_path = forkserver
    pid = _fork(socket_path, "dag-processor", tmp_path / "dag-processor.log")
    server.terminate()
    assert server.wait(timeout=10) == 0
    assert not socket_path.exists()
    time.sleep(0.5)
    assert Path(f"/proc/{pid}").exists()  # the supervisor starts a new server; this one runs on
    os.killpg(pid, signal.SIGKILL)
