"""The benchmark report's header says what ran, at which sizes, and what the command changed.

Pure logic (no services): the benchmark itself runs with `make bench`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench import sizes
from bench.__main__ import _measurements, _write

MACHINE = {"nproc": 2, "date": "2026-12-05 06:52:48 UTC"}


def _header(tmp_path: Path, **options: object) -> str:
    args = argparse.Namespace(
        **{"quick": False, "dbt_sizes": None, "window_min": None, **options},
        output=str(tmp_path / "RESULTS.md"),
    )
    _write(args, MACHINE, [], 60.0, final=True)
    return (tmp_path / "RESULTS.md").read_text().split("## Verdicts")[0]


def test_a_growth_only_report_lists_only_the_growth_sizes(tmp_path: Path) -> None:
    header = _header(tmp_path, only=["growth"])
    assert "- Measurements run: growth (of ingest, dbt, dashboard, stack, growth)" in header
    assert "6 simulated days" in header
    assert "ingest" not in header.split("Measurements run")[1].split("\n", 2)[1]
    assert "10M" not in header


def test_a_quick_report_gives_the_reduced_sizes_of_what_ran(tmp_path: Path) -> None:
    header = _header(tmp_path, only=["ingest", "dbt"], quick=True)
    assert "ingest 10k and 30k messages; dbt on 50k and 150k raw rows" in header
    assert "dashboard" not in header.split("reduced sizes")[1].split("\n")[0]


def test_sizes_the_command_overrode_are_named(tmp_path: Path) -> None:
    header = _header(tmp_path, only=["dbt", "stack"], dbt_sizes=[2_000_000], window_min=5.0)
    assert "This run's dbt sizes instead: 2,000,000 raw rows." in header
    assert "This run's load window instead: 5 minutes." in header
    assert "instead" not in _header(tmp_path, only=["dbt", "stack"])


def test_only_refuses_an_unknown_measurement_by_name() -> None:
    assert _measurements(" ingest, growth ") == ["ingest", "growth"]
    with pytest.raises(argparse.ArgumentTypeError, match=r"unknown measurement\(s\) \['ingets'\]"):
        _measurements("ingets,dbt")


def test_sizes_read_as_people_write_them() -> None:
    assert [sizes.count(n) for n in (999, 1_500, 150_000, 1_000_000, 10_000_000)] == [
        "999",
        "1.5k",
        "150k",
        "1M",
        "10M",
    ]
    assert sizes.describe("dbt", quick=False) == "dbt on 1M, 5M and 10M raw rows"
    # The dashboard is measured on the warehouse the dbt measurement leaves: its largest size.
    assert sizes.describe("dashboard", quick=True) == "dashboard at 150k raw rows"
    with pytest.raises(ValueError, match="unknown measurement 'ingets'"):
        sizes.describe("ingets", quick=False)
