"""The benchmark's verdict lines: a printed figure never reads as the other side of its target.

Pure logic (no services): the benchmark itself runs with `make bench`.
"""

from __future__ import annotations

import pytest

from bench.common import Section, Target


@pytest.mark.parametrize(
    ("value", "target", "shown", "met"),
    [
        # Rounded to the target's digits these would read as the line itself, met or not.
        (0.497, Target(">=", 0.5), "0.497", False),
        (0.2504, Target("<=", 0.25, " cores", digits=3), "0.2504 cores", False),
        (4.996, Target("<", 5, " s"), "4.996 s", True),
        (1.5004, Target("<=", 1.5), "1.5004", False),
        (1228.6, Target("<=", 1.2 * 1024, " MiB", digits=0), "1228.6 MiB", True),
        # Away from the line, the target's own digits.
        (0.216, Target("<=", 0.25, " cores", digits=3), "0.216 cores", True),
        (47.66, Target("<", 100, " ms", digits=1), "47.7 ms", True),
        (0.5, Target(">=", 0.5), "0.50", True),
        (5.0, Target("<", 5, " s"), "5.00 s", False),
    ],
)
def test_a_figure_is_printed_with_the_digits_its_verdict_needs(value, target, shown, met) -> None:
    assert target.show(value) == shown
    assert target.met(value) is met
    assert target.met(float(shown.split()[0])) is met


def test_check_records_the_figure_its_target_and_the_verdict() -> None:
    section = Section("t")
    section.check("ingest", 0.497, Target(">=", 0.5), "(loader 30,433 msg/s)")
    section.check("headline", 1.55, Target("<", 2, " s"))
    assert section.verdicts == [
        ("ingest", "0.497 (loader 30,433 msg/s)", ">= 0.5", False),
        ("headline", "1.55 s", "< 2 s", True),
    ]


def test_a_failure_the_figure_cannot_show_fails_a_figure_on_target() -> None:
    section = Section("t")
    section.check(
        "freshness", 12.3, Target("<", 20, " s", digits=1), "(p50 8.0 s)", "7 quotes never came"
    )
    section.check("freshness at rest", 9.0, Target("<", 15, " s", digits=1), "(p50 6.0 s)", "")
    assert section.verdicts == [
        ("freshness", "12.3 s (p50 8.0 s); 7 quotes never came", "< 20 s", False),
        ("freshness at rest", "9.0 s (p50 6.0 s)", "< 15 s", True),
    ]


def test_an_unknown_comparison_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown comparison '=<'"):
        Target("=<", 1)
