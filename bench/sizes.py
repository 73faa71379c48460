"""What each measurement runs on, by mode (full, or ``--quick``): the one place the sizes live,
read by the measurements and by the report's header that names them."""

from __future__ import annotations

from typing import NamedTuple


class Ingest(NamedTuple):
    runs: tuple[tuple[int, int], ...]  # (messages, repetitions) per size
    scaling: int  # messages shared by the loaders of one consumer group


class Stack(NamedTuple):
    warmup_min: float
    rest_min: float
    load_min: float


class Growth(NamedTuple):
    warmup_min: float
    window_min: float
    days: int
    day_min: float


# 100k takes seconds a repetition, and its ceilings swing with whatever else runs (the stack's
# load window), so it takes the median of five interleaved triples.
INGEST = {
    False: Ingest(((100_000, 5), (1_000_000, 1)), 300_000),
    True: Ingest(((10_000, 1), (30_000, 2)), 20_000),
}
# Generating raw + mart history costs ~25 s per million rows on an idle 2-core machine; the
# dashboard is measured on the warehouse of the largest.
DBT_RAW_ROWS = {False: (1_000_000, 5_000_000, 10_000_000), True: (50_000, 150_000)}
# The issue measured "at rest" after 6 minutes of warm-up; by 4 the DAGs are registered and the
# first listings, FX, reference and docs builds have run. Warm-up, rest (10 min) and load (20
# min) keep the stack's part of a full run under 40 minutes.
STACK = {False: Stack(4.0, 10.0, 20.0), True: Stack(1.0, 1.5, 1.5)}
GROWTH = {False: Growth(6.0, 10.0, 6, 2.0), True: Growth(1.0, 2.0, 4, 0.5)}


def count(n: int) -> str:
    """10_000 -> "10k", 1_000_000 -> "1M"."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= size:
            return f"{n / size:g}{suffix}"
    return str(n)


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def describe(measurement: str, quick: bool) -> str:
    """``measurement``'s sizes in the mode, as the report's header names them."""
    if measurement == "ingest":
        return f"ingest {_listed([count(n) for n, _ in INGEST[quick].runs])} messages"
    if measurement == "dbt":
        return f"dbt on {_listed([count(n) for n in DBT_RAW_ROWS[quick]])} raw rows"
    if measurement == "dashboard":
        return f"dashboard at {count(DBT_RAW_ROWS[quick][-1])} raw rows"
    if measurement == "stack":
        s = STACK[quick]
        return (
            f"the stack {s.rest_min:g} minutes at rest after {s.warmup_min:g} of warm-up, "
            f"then {s.load_min:g} minutes of load"
        )
    if measurement == "growth":
        g = GROWTH[quick]
        return (
            f"growth: a {g.window_min:g}-minute window after {g.warmup_min:g} of warm-up, "
            f"then {g.days} simulated days of {g.day_min:g} minutes"
        )
    raise ValueError(f"unknown measurement {measurement!r}")
