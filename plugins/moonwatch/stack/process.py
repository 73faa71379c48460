"""Start, watch and stop the local stack's background processes by recorded PID files.

Each service is one process group started with ``start_new_session`` so stopping it takes its
children along (Airflow's api-server forks workers). A PID file holds ``pid`` and the process
start time, so a stale file left by a crash or a reboot is recognised and never kills an
unrelated process that happens to reuse the PID.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from moonwatch.errors import StackError
from moonwatch.stack.files import ensure_private

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ManagedProcess:
    """A service process the launcher owns: where its PID file and log live."""

    name: str
    run_dir: Path
    log_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The PID of the live process this file names, or None (and the stale file removed)."""
        try:
            pid_text, _, started = self.pid_file.read_text().partition(" ")
            pid = int(pid_text)
        except (FileNotFoundError, ValueError):
            return None
        # No start time recorded: the process had already exited when it was started.
        if not started.strip() or _process_start_time(pid) != started.strip():
            logger.info("removing stale PID file %s (process %s is gone)", self.pid_file, pid)
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: Path | None = None,
        stdin_text: str | None = None,
    ) -> int:
        """Start the process in its own session, logging to its log file; returns the PID.

        ``stdin_text`` is written to its standard input, then closed: how a secret reaches a
        program that reads its configuration there (Redis), off the command line and disk."""
        existing = self.pid()
        if existing is not None:
            return existing
        with os.fdopen(self.open_log(), "ab") as log:
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL if stdin_text is None else subprocess.PIPE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=cwd,
                    start_new_session=True,
                )
            except FileNotFoundError as e:
                raise StackError(
                    f"cannot start {self.name}: {argv[0]} not found. Run `make install` "
                    "(it creates .venv and installs requirements.txt)."
                ) from e
        if stdin_text is not None and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(stdin_text.encode())
            proc.stdin.close()
        self.record(proc.pid)
        return proc.pid

    def open_log(self) -> int:
        """The service's log file opened for appending (a file descriptor the caller closes);
        the run and log folders made first."""
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Logs can quote connection errors: private from the first byte, whatever the umask.
        ensure_private(self.log_file, f"the {self.name} log")
        return os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)

    def record(self, pid: int) -> None:
        """Write the PID file of ``pid``, this service's process (started here or for us)."""
        self.pid_file.write_text(f"{pid} {_process_start_time(pid)}")

    def stop(self, timeout: float = 20.0, sig: signal.Signals = signal.SIGTERM) -> bool:
        """Signal the process group, SIGKILL it after ``timeout``; True if something ran."""
        pid = self.pid()
        if pid is None:
            return False
        _signal_group(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.2)
        if _group_alive(pid):
            logger.warning("%s did not stop within %.0f s; killing it", self.name, timeout)
            _signal_group(pid, signal.SIGKILL)
            time.sleep(0.5)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log yet)"


def _process_start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat (start time in clock ticks): identifies a process instance."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""
    # The command name (field 2) may hold spaces; it is wrapped in parentheses.
    fields = stat.rsplit(")", 1)[1].split()
    if fields and fields[0] == "Z":
        return ""
    return fields[19] if len(fields) > 19 else ""


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _group_alive(pid: int) -> bool:
    if _process_start_time(pid):
        return True
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # Members of the group may be zombies waiting for a reaper; count only live ones.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pid and fields[0] != "Z":
                return True
    return False


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port the OS says is free right now (for throw-away test services)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_taken_message(port: int, service: str, setting: str) -> str:
    return (
        f"port {port} for {service} is already taken by another program. Stop that program "
        f"(`ss -ltnp 'sport = :{port}'` shows which) or choose another port with {setting}."
    )


def require_free_port(port: int, service: str, setting: str) -> None:
    if not port_is_free(port):
        raise StackError(port_taken_message(port, service, setting))


def wait_until(
    check: Callable[[], bool],
    what: str,
    timeout: float,
    process: ManagedProcess | None = None,
    interval: float = 0.5,
) -> None:
    """Poll ``check`` until it is true; fail with the service log's tail if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - any failure here just means "not ready yet"
            pass
        if process is not None and not process.is_running():
            raise StackError(
                f"{process.name} exited while starting ({what}). Last log lines from "
                f"{process.log_file}:\n{process.log_tail()}"
            )
        time.sleep(interval)
    where = f" See {process.log_file}:\n{process.log_tail()}" if process else ""
    raise StackError(f"timed out after {timeout:.0f} s waiting for {what}.{where}")
