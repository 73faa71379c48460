"""The chaos suite (`make chaos`): attacks on a running local stack, each repeated.

It starts one full stack of its own (temp home, free ports) for the whole run and writes a
table of attacks, repetitions and outcomes to docs/RELIABILITY.md at the end.
"""

from __future__ import annotations

import os
import platform
import secrets
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from moonwatch.stack.config import StackConfig
from moonwatch.stack.ephemeral import ephemeral_stack

REPORT = Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md"
THREAT_MODEL = Path(__file__).with_name("THREAT_MODEL.md")
FINDINGS = Path(__file__).with_name("FINDINGS.md")  # hand-kept history, not results
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


_MARKED: set[str] = set()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # By marker, not keyword: every test in this folder has the keyword "chaos" (its package
    # name), and the folder's plain tests run in `make test`, which must not rewrite the report.
    _MARKED.update(item.nodeid for item in items if item.get_closest_marker("chaos"))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Only the chaos-marked tests (the attacks and the long property test).
    if report.nodeid not in _MARKED or (report.when != "call" and report.passed):
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        attack = report.nodeid.split("::")[-1].split("[")[0]
        _OUTCOMES[attack][report.outcome] += 1
        _DURATIONS[attack] += report.duration
        if report.failed:
            _NOTES[attack] = str(report.longrepr).strip().splitlines()[-1][:300]
        elif report.skipped and isinstance(report.longrepr, tuple):
            _NOTES[attack] = f"did not count: {report.longrepr[2]}"[:300]


def render_report(
    attacks: dict[str, str],
    outcomes: dict[str, dict[str, int]],
    durations: dict[str, float],
    notes: dict[str, str],
    evidence: list[tuple[str, str]],
    header: str,
) -> str:
    """docs/RELIABILITY.md from one run only: nothing of an older table is kept."""
    lines = [
        "# Reliability: attacks on the running pipeline",
        "",
        header,
        "",
        "| attack | what must hold | rounds | passed | failed | did not count | seconds | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    # Every chaos-marked test that ran gets a row, also those outside ATTACKS (such as the long
    # property test `make chaos` runs): a result is never silently left out.
    rows = dict(attacks)
    for name in outcomes:
        rows.setdefault(name, "(a chaos-marked test outside tests/chaos/test_attacks.py)")
    for attack, what in rows.items():
        counts = outcomes.get(attack)
        if counts is None:
            lines.append(f"| `{attack}` | {what} | not run in this run | | | | | |")
            continue
        lines.append(
            f"| `{attack}` | {what} | {sum(counts.values())} | {counts.get('passed', 0)} | "
            f"{counts.get('failed', 0)} | {counts.get('skipped', 0)} | "
            f"{durations.get(attack, 0):.0f} | {notes.get(attack, '')} |"
        )
    lines += ["", "## Evidence from this run", ""]
    lines += [f"- `{attack}` {text}" for attack, text in evidence] or ["- (none recorded)"]
    lines += ["", THREAT_MODEL.read_text().strip(), ""]
    lines += [FINDINGS.read_text().strip(), ""]
    return "\n".join(lines)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _OUTCOMES or os.environ.get("CHAOS_REPORT", "1") == "0":
        return
    from tests.chaos.harness import EVIDENCE
    from tests.chaos.test_attacks import ATTACKS, REPEAT, SOAK_MINUTES

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPORT.parent
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        cwd=REPORT.parent,
    ).stdout.strip()
    code = f"commit {commit or 'unknown'}" + (" plus uncommitted changes" if dirty else "")
    header = (
        f"Written by `make chaos` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({platform.node()}, {os.cpu_count()} cores, {code}), from this one run only "
        f"(CHAOS_REPEAT={REPEAT}, CHAOS_SOAK_MINUTES={SOAK_MINUTES:g}). Each attack runs "
        "against a full local stack (Postgres, tansu broker, simulator, Airflow 3 with all its "
        "services, dbt, Streamlit) started by the same launcher as `make up`. A round whose "
        "attack provably landed after the last commit is listed as *did not count*."
    )
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(render_report(ATTACKS, _OUTCOMES, _DURATIONS, _NOTES, EVIDENCE, header))
