"""Airflow's four long-lived components, forked from one process that imported Airflow once.

Started as four `airflow <component>` programs, each component imports Airflow, SQLAlchemy,
FastAPI and the rest by itself: the same ~150 MiB of modules four times over (five with the
triggerer's runner), none of it shared. This process imports them once, moves them out of the
garbage collector's way (``gc.freeze``: a collection writes to every object it visits, and a
written page is no longer shared), and forks each component when asked. The component runs
Airflow's own command line, as `airflow <component>` would, and the imported modules' pages
stay shared for as long as nobody writes to them: about 150-200 MiB less PSS at rest
(``make bench`` measures the stack's PSS).

The launcher and the supervisor ask over a Unix socket in the stack's private run folder. A
request is one component's name, one of :data:`COMPONENT_ARGS` and nothing else (no command
line ever crosses the socket). This process then does what the launcher does for every other
service: it opens the component's log, starts it in a session of its own and writes its PID
file (so it is stopped like any other service), before it answers with the PID. A component
already running is not started again: the answer is its PID. Components that exit are reaped
here.

Before any fork this process starts no thread and never connects to the metadata database
(Airflow's engine connects on first use), so every component starts as a fresh `airflow` would.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import select
import signal
import socket
import sys
import threading
from pathlib import Path

from moonwatch.errors import StackError
from moonwatch.stack.process import ManagedProcess

logger = logging.getLogger(__name__)

# Each component's `airflow` arguments. The api-server takes its host and port from
# AIRFLOW__API__HOST/PORT. The scheduler and triggerer start no log server of their own: the
# api-server reads the task logs from the same disk.
COMPONENT_ARGS: dict[str, tuple[str, ...]] = {
    "api-server": ("api-server",),
    "scheduler": ("scheduler", "--skip-serve-logs"),
    "dag-processor": ("dag-processor",),
    "triggerer": ("triggerer", "--skip-serve-logs"),
}

# What the components import when they start, imported here once instead.
PRELOADED_MODULES = (
    "airflow.__main__",
    "airflow.cli.commands.api_server_command",
    "airflow.cli.commands.scheduler_command",
    "airflow.cli.commands.dag_processor_command",
    "airflow.cli.commands.triggerer_command",
    "airflow.api_fastapi.app",
    "airflow.jobs.scheduler_job_runner",
    "airflow.jobs.triggerer_job_runner",
    "airflow.dag_processing.manager",
    "airflow.executors.local_executor",
    "uvicorn",
)

# Its PID file, log and socket in the stack's folders.
NAME = "airflow-forkserver"
_MAX_REQUEST = 64 * 1024
_REAP_EVERY_S = 1.0


# -- the launcher's side -----------------------------------------------------------------


def component_process(run_dir: Path, log_dir: Path, component: str) -> ManagedProcess:
    return ManagedProcess(f"airflow-{component}", run_dir, log_dir)


def socket_path(run_dir: Path) -> Path:
    return run_dir / f"{NAME}.sock"


def ready(run_dir: Path) -> bool:
    """True once the fork server of ``run_dir`` has imported Airflow and takes requests."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        try:
            client.connect(str(socket_path(run_dir)))
        except OSError:
            return False
    return True


def request_component(run_dir: Path, component: str, timeout: float = 30.0) -> int:
    """Ask the fork server of ``run_dir`` for ``component``: the PID of the one running, forked
    now if none was."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        client.connect(str(socket_path(run_dir)))
        client.sendall(component.encode())
        client.shutdown(socket.SHUT_WR)
        raw = b""
        while chunk := client.recv(4096):  # the server closes once it has answered
            raw += chunk
    answer = raw.decode(errors="replace").strip()
    if not answer.isdigit():
        raise StackError(
            f"the Airflow fork server did not start {component[:100]}: {answer or 'no answer'}. "
            f"Its log, {NAME}.log beside the stack's other logs, says more."
        )
    return int(answer)


# -- the fork server -------------------------------------------------------------------------


def preload(modules: tuple[str, ...] = PRELOADED_MODULES) -> None:
    """Import the components' modules, then freeze every object so far out of the collector's
    reach (the children share them as long as nothing writes to their pages).

    Airflow configures its logging when first imported, as in any `airflow` process; the
    modules after it are imported without touching that configuration, which the children
    inherit."""
    import airflow  # noqa: F401

    from moonwatch.preloading_executor import preload as import_modules

    import_modules(modules)
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:  # a fork keeps only the forking thread: what the others held would be lost
        raise RuntimeError(f"importing Airflow started threads {threads}; cannot fork safely")
    gc.collect()
    gc.freeze()


def serve(run_dir: Path, log_dir: Path) -> None:
    """Take requests until SIGTERM; reap the components that exit."""
    preload()
    path = socket_path(run_dir)
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    logger.info("Airflow imported; forking components on request at %s", path)
    try:
        while not stopping:
            if select.select([server], [], [], _REAP_EVERY_S)[0]:
                conn, _ = server.accept()
                with conn:
                    try:
                        _answer(conn, server, run_dir, log_dir)
                    except Exception as e:  # say why, and serve the next one
                        logger.exception("answering a request failed")
                        with contextlib.suppress(OSError):  # the asker may have left
                            conn.sendall(f"failed: {e}".encode())
            _reap()
    finally:
        server.close()
        path.unlink(missing_ok=True)


def _answer(conn: socket.socket, server: socket.socket, run_dir: Path, log_dir: Path) -> None:
    conn.settimeout(5)
    request = b""
    # To the asker's end of writing (read whole, an answer is never cut off by a reset), within
    # a bound; no component's name comes near it.
    while len(request) <= _MAX_REQUEST and (chunk := conn.recv(4096)):
        request += chunk
    if not request:  # a readiness check: connected, asked nothing
        return
    component = request.decode(errors="replace").strip()
    if component not in COMPONENT_ARGS:
        logger.warning("refused a request for %r", component[:100])
        known = ", ".join(COMPONENT_ARGS)
        conn.sendall(f"unknown component {component[:100]!r}; one of {known}".encode())
        return
    process = component_process(run_dir, log_dir, component)
    pid = process.pid()
    if pid is None:
        log_fd = process.open_log()
        try:
            pid = os.fork()
            if pid == 0:
                server.close()
                conn.close()
                _become(component, log_fd)
        finally:
            os.close(log_fd)
        process.record(pid)
        logger.info("forked %s: PID %d", component, pid)
    conn.sendall(str(pid).encode())


def _become(component: str, log_fd: int) -> None:
    """In the forked child: `airflow <component>` in a session of its own, its output to
    ``log_fd``, nothing from the stdin; never returns."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(devnull)
        os.close(log_fd)
        code = run_airflow(COMPONENT_ARGS[component])
        atexit._run_exitfuncs()
    except BaseException:
        logger.exception("%s failed", component)
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # exiting either way
                stream.flush()
        os._exit(code)


def run_airflow(args: tuple[str, ...]) -> int:
    """Airflow's command line with ``args``, titled as `airflow ARGS` would be; its exit code."""
    from airflow.__main__ import main
    from setproctitle import setproctitle

    sys.argv = ["airflow", *args]
    setproctitle(" ".join(sys.argv))
    try:
        main()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        logger.info("component PID %d exited (%s)", pid, os.waitstatus_to_exitcode(status))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        usage = "usage: python -m moonwatch.stack.airflow_forkserver RUN_DIR LOG_DIR"
        print(usage, file=sys.stderr)
        return 2
    serve(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
