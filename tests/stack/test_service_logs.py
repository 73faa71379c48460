"""The launcher's service logs stay bounded: a log over its cap moves to ``.log.1`` and the
running service keeps writing to the emptied file (no restart, nothing lost from the new part)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from moonwatch.stack.files import cap_service_logs

# A real process writing through an O_APPEND descriptor, as every service the launcher starts.
WRITER = """
import sys, time
with open(sys.argv[1], "ab", buffering=0) as log:
    for i in range(int(sys.argv[2])):
        log.write(b"line %06d " % i + b"x" * 90 + b"\\n")
        time.sleep(0.002)
"""


def test_a_service_log_over_its_cap_moves_aside_and_the_service_keeps_writing(
    tmp_path: Path,
) -> None:
    log = tmp_path / "scheduler.log"
    small = tmp_path / "dashboard.log"
    small.write_text("small\n")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(log), "3000"])
    try:
        while not log.exists() or log.stat().st_size < 100_000:
            time.sleep(0.05)
        capped = cap_service_logs(tmp_path, max_bytes=50_000)
        size_after_cap = log.stat().st_size
    finally:
        assert writer.wait(timeout=60) == 0
    assert capped == [log]
    previous = (tmp_path / "scheduler.log.1").read_bytes()
    assert len(previous) >= 100_000 and previous.startswith(b"line 000000 ")
    # The writer went on after the cap: the file restarted near zero and grew again, and no
    # line lands in the middle of NULs (O_APPEND writes at the new end, not the old offset).
    assert size_after_cap < 100_000
    current = log.read_bytes()
    assert b"\0" not in current and current.endswith(b"line 002999 " + b"x" * 90 + b"\n")
    lines = previous.splitlines() + current.splitlines()
    numbers = [int(line.split()[1]) for line in lines if line]
    assert numbers[-1] == 2999 and len(set(numbers)) >= 2999 - 5  # at most a line in flight
    assert small.read_text() == "small\n" and not (tmp_path / "dashboard.log.1").exists()
    # Capping again replaces the previous part instead of piling parts up.
    with log.open("ab") as more:
        more.write(b"y" * 60_000)
    assert cap_service_logs(tmp_path, max_bytes=50_000) == [log]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dashboard.log",
        "scheduler.log",
        "scheduler.log.1",
    ]
    assert os.path.getsize(log) == 0
