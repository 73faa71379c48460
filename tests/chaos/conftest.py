"""The chaos suite (`make chaos`): attacks on a running local stack, each repeated.

It starts one full stack of its own (temp home, free ports) for the whole run and writes a
table of attacks, repetitions and outcomes to docs/RELIABILITY.md at the end.
"""

from __future__ import annotations

import os
import platform
import secrets
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from moonwatch.stack.config import StackConfig
from moonwatch.stack.ephemeral import ephemeral_stack

REPORT = Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md"
_OUTCOMES: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
_NOTES: dict[str, str] = {}
_DURATIONS: dict[str, float] = defaultdict(float)


@pytest.fixture(scope="session")
def chaos_stack() -> Iterator[StackConfig]:
    # The chaos run asks for the simulator's fault control; `make up` never turns it on.
    token = secrets.token_urlsafe(24)
    with ephemeral_stack(MOONWATCH_SYMBOLS="BTC,ETH,SOL", MOONWATCH_SIM_CONTROL_TOKEN=token) as (
        config,
        _env,
    ):
        yield config


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/chaos/" not in report.nodeid or (report.when != "call" and report.passed):
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        attack = report.nodeid.split("::")[-1].split("[")[0]
        _OUTCOMES[attack][report.outcome] += 1
        _DURATIONS[attack] += report.duration
        if report.failed:
            _NOTES[attack] = str(report.longrepr).strip().splitlines()[-1][:300]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _OUTCOMES or os.environ.get("CHAOS_REPORT", "1") == "0":
        return
    doc = (__import__("tests.chaos.test_attacks", fromlist=["ATTACKS"])).ATTACKS
    lines = [
        "# Reliability: attacks on the running pipeline",
        "",
        f"Written by `make chaos` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({platform.node()}, {os.cpu_count()} cores). Each attack runs against a full local "
        "stack (Postgres, tansu broker, simulator, Airflow 3 with all its services, dbt, "
        "Streamlit) started by the same launcher as `make up`.",
        "",
        "| attack | what must hold | repetitions | passed | failed | seconds | note |",
        "|---|---|---|---|---|---|---|",
    ]
    rows: dict[str, str] = {}
    existing = REPORT.read_text() if REPORT.exists() else ""
    # Attacks not run this time keep their last recorded row.
    for line in existing.split("## Findings", 1)[0].splitlines():
        if line.startswith("| `test_chaos_"):
            rows[line.split("`")[1]] = line
    for attack, counts in _OUTCOMES.items():
        total = sum(counts.values())
        what = doc.get(attack, "")
        rows[attack] = (
            f"| `{attack}` | {what} | {total} | {counts.get('passed', 0)} | "
            f"{counts.get('failed', 0)} | {_DURATIONS[attack]:.0f} | {_NOTES.get(attack, '')} |"
        )
    lines += [rows[a] for a in doc if a in rows]
    REPORT.parent.mkdir(exist_ok=True)
    findings = existing.split("## Findings", 1)[1] if "## Findings" in existing else "\n"
    REPORT.write_text("\n".join(lines) + "\n\n## Findings" + findings)
