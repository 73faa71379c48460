"""Measurement 2: how fresh ``marts.quotes_coins`` is, and which stage costs what.

``MartPoller`` polls the mart every second and records when each (coin_id, last_updated) is
first seen. Each quote is then placed on Airflow's own timeline, read from the stack's metadata
database after the window:

* ``load_quotes`` task instance of ``crypto_quotes_load`` whose run covers the row's
  ``loaded_at`` (start .. end);
* ``crypto_transform`` DAG run whose run covers the moment the row was first seen in the mart.

The stages, one after the other, for one quote:

1. sensor wake-up: ``fetched_at`` -> ``load_quotes`` starts (produce, the sensor's trigger
   firing in the triggerer and ending its task there, the scheduler queueing the load task);
2. load: ``load_quotes`` start -> its end (consume, COPY, commit; then waiting ``idle_s`` for
   more before it returns, which is when the Asset event is emitted);
3. Asset trigger: ``load_quotes`` end -> the ``crypto_transform`` run that built it starts
   (Asset event, scheduler loop, waiting for a previous dbt run still in flight);
4. dbt: that run's start -> the row is seen in the mart (its one ``dbt_build`` task starting,
   then ``dbt build`` of the quote selection; at most 1 s of polling granularity).

Two groups get the breakdown: the synthetic 5,000 quotes a minute, and the simulator's 10
coins while the stack is otherwise at rest (the issue's two freshness targets).
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import itertools
import threading
import time
from dataclasses import dataclass

import psycopg

from bench.common import Section, Target, percentile

STAGES = ("sensor wake-up", "load", "Asset trigger", "dbt")
STAGE_COVERS = (
    "fetched_at -> load_quotes starts (deferred sensor fires, task queued and started)",
    "load_quotes start -> end (consume, COPY, commit, then idle_s waiting for more)",
    "load_quotes end -> crypto_transform run starts (Asset event, scheduler, queueing)",
    "crypto_transform start -> row seen in marts.quotes_coins (task start, dbt build)",
)
WHOLE = "synthetic 5,000/min, whole window"
ALONE = "synthetic, the stack alone"
AT_REST = "simulator, 10 coins, stack otherwise at rest"
# The targets: fetched_at -> marts.quotes_coins p95.
TARGET_AT_REST_S = 15.0
TARGET_UNDER_LOAD_S = 20.0


class MartPoller(threading.Thread):
    """Polls marts.quotes_coins every second; first-seen time per (coin_id, last_updated_at)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        # (coin_id, last_updated_at) -> (first seen, epoch s; fetched_at; loaded_at)
        self.first_seen: dict[tuple[int, dt.datetime], tuple[float, dt.datetime, dt.datetime]] = {}
        # Held while a poll adds rows: another thread counts them while the poller runs.
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.errors = 0
        self.polls = 0

    def seen(self, from_coin_id: int) -> int:
        """How many quotes of coin ids from ``from_coin_id`` up the mart has shown so far."""
        with self.lock:
            return sum(1 for coin_id, _updated in self.first_seen if coin_id >= from_coin_id)

    def run(self) -> None:
        watermark: dt.datetime | None = None
        conn = None
        while not self.stop_event.is_set():
            started = time.time()
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                rows = conn.execute(
                    "select coin_id, last_updated_at, fetched_at, loaded_at"
                    " from marts.quotes_coins where loaded_at > %s",
                    (watermark or dt.datetime(2000, 1, 1, tzinfo=dt.UTC),),
                ).fetchall()
                seen_at = time.time()
                self.polls += 1
                with self.lock:
                    for coin_id, updated, fetched, loaded in rows:
                        self.first_seen.setdefault((coin_id, updated), (seen_at, fetched, loaded))
                if rows:
                    newest = max(r[3] for r in rows)
                    # 90 s slack: a late commit can land a row older than the newest seen.
                    watermark = max(watermark or newest, newest - dt.timedelta(seconds=90))
            except psycopg.Error:
                self.errors += 1  # the mart may not exist yet, or a dbt swap holds a lock
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
            self.stop_event.wait(max(0.0, 1.0 - (time.time() - started)))
        if conn is not None:
            conn.close()


@dataclass(frozen=True)
class Timeline:
    """Start/end epoch seconds of load_quotes task instances and crypto_transform runs."""

    loads: list[tuple[float, float]]
    transforms: list[tuple[float, float]]

    @classmethod
    def read(cls, airflow_db_url: str) -> Timeline:
        url = airflow_db_url.replace("postgresql+psycopg2://", "postgresql://", 1)
        with psycopg.connect(url, connect_timeout=10) as conn:
            # A run still going when the window closed counts as ending now.
            loads = conn.execute(
                "select extract(epoch from start_date),"
                " extract(epoch from coalesce(end_date, now()))"
                " from task_instance where dag_id = 'crypto_quotes_load'"
                " and task_id = 'load_quotes' and start_date is not null order by start_date"
            ).fetchall()
            transforms = conn.execute(
                "select extract(epoch from start_date),"
                " extract(epoch from coalesce(end_date, now()))"
                " from dag_run where dag_id = 'crypto_transform' and start_date is not null"
                " order by start_date"
            ).fetchall()
        return cls(
            [(float(a), float(b)) for a, b in loads],
            [(float(a), float(b)) for a, b in transforms],
        )

    @staticmethod
    def _covering(spans: list[tuple[float, float]], t: float, slack: float) -> tuple | None:
        # Runs of one DAG do not overlap (max_active_runs=1); within the slack after a run's end
        # the earlier run is the one that wrote the row (the next cannot have finished yet).
        i = bisect.bisect_left(spans, (t - slack, float("-inf")))
        for span in spans[max(0, i - 1) :]:
            if span[0] > t:
                return None
            if span[1] + slack >= t:
                return span
        return None

    def stages(self, fetched: float, loaded: float, seen: float) -> tuple[float, ...] | None:
        """Seconds per STAGES for one quote, or None if it cannot be placed on the timeline."""
        load = self._covering(self.loads, loaded, slack=0.5)
        # A mart row is seen up to one poll (1 s) after the run that wrote it ended.
        build = self._covering(self.transforms, seen, slack=1.5)
        if load is None or build is None or build[0] < load[0]:
            return None
        points = [fetched, load[0], load[1], max(build[0], load[1]), seen]
        return tuple(max(0.0, b - a) for a, b in itertools.pairwise(points))


def stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (
        f"p50 {percentile(values, 50):.1f} s, p95 {percentile(values, 95):.1f} s, "
        f"max {max(values):.1f} s (n={len(values):,})"
    )


Rows = dict[tuple[int, dt.datetime], tuple[float, dt.datetime, dt.datetime]]


def stage_table(section: Section, label: str, rows: Rows, timeline: Timeline) -> None:
    """Where the time goes for ``rows``: each stage's seconds and its share of the total."""
    placed = [
        s
        for seen, f, lo in rows.values()
        if (s := timeline.stages(f.timestamp(), lo.timestamp(), seen)) is not None
    ]
    section.add(
        "",
        f"Where the time goes, {label} ({len(placed):,} of {len(rows):,} quotes placed on "
        "Airflow's timeline); share = the stage's mean / the mean total:",
        "",
        "| stage | what it covers | seconds | share |",
        "|---|---|---|---|",
    )
    total = sum(sum(p) for p in placed)
    for i, (name, what) in enumerate(zip(STAGES, STAGE_COVERS, strict=True)):
        values = [p[i] for p in placed]
        share = f"{100 * sum(values) / total:.0f}%" if total else "n/a"
        section.add(f"| {name} | {what} | {stats(values)} | {share} |")


def report(
    section: Section,
    poller: MartPoller,
    timeline: Timeline | None,
    *,
    synthetic_from: int,
    produced: int,
    overlap_until: float | None,
    produce_stats: str,
    rest: tuple[float, float] | None = None,
) -> None:
    """Freshness tables (total, per phase), each stage's share, and the two verdicts: the
    synthetic 5,000/min, the simulator's 10 coins in ``rest``."""
    synth = {k: v for k, v in poller.first_seen.items() if k[0] >= synthetic_from}

    def simulator(start: float, end: float) -> Rows:
        return {
            k: v
            for k, v in poller.first_seen.items()
            if k[0] < synthetic_from and v[1] is not None and start <= v[1].timestamp() < end
        }

    section.add(
        "",
        "### Freshness (measurement 2)",
        "",
        f"Mart polls: {poller.polls:,} (1 s apart; failed polls {poller.errors}). Synthetic "
        f"quotes produced {produced:,}, seen in the mart {len(synth):,}. Producing one round "
        f"of 5,000 took {produce_stats}.",
        "",
        "| quotes | fetched_at -> mart (total) | fetched_at -> raw loaded_at "
        "| raw loaded_at -> mart first seen |",
        "|---|---|---|---|",
    )
    groups: list[tuple[str, Rows]] = [(WHOLE, synth)]
    if overlap_until is not None:
        groups += [
            (
                "synthetic, while the other measurements ran",
                {k: v for k, v in synth.items() if v[1].timestamp() < overlap_until},
            ),
            (
                ALONE,
                {k: v for k, v in synth.items() if v[1].timestamp() >= overlap_until},
            ),
        ]
    if rest is not None:
        groups.append((AT_REST, simulator(*rest)))
    totals: dict[str, list[float]] = {}
    for label, rows in groups:
        totals[label] = [seen - f.timestamp() for seen, f, _lo in rows.values()]
        load = [lo.timestamp() - f.timestamp() for _s, f, lo in rows.values()]
        mart = [seen - lo.timestamp() for seen, _f, lo in rows.values()]
        section.add(f"| {label} | {stats(totals[label])} | {stats(load)} | {stats(mart)} |")

    if timeline is not None:
        section.add(
            "",
            f"Airflow's metadata database: {len(timeline.loads)} `load_quotes` task instances, "
            f"{len(timeline.transforms)} `crypto_transform` runs.",
        )
        stage_table(section, "per synthetic quote (5,000/min)", synth, timeline)
        if rest is not None:
            stage_table(
                section, "per simulator quote at rest (10 coins)", dict(groups)[AT_REST], timeline
            )

    _verdict(
        section,
        "freshness p95 at 5,000 coins/min, fetched_at -> marts.quotes_coins (synthetic, whole "
        "window)",
        totals[WHOLE],
        TARGET_UNDER_LOAD_S,
        missing=produced - len(synth),
        alone=totals.get(ALONE),
    )
    if rest is not None:
        _verdict(
            section,
            "freshness p95 at 10 coins, fetched_at -> marts.quotes_coins (stack at rest)",
            totals[AT_REST],
            TARGET_AT_REST_S,
        )


def _verdict(
    section: Section,
    what: str,
    totals: list[float],
    target_s: float,
    *,
    missing: int = 0,
    alone: list[float] | None = None,
) -> None:
    target = Target("<", target_s, " s", digits=1)
    if not totals:
        section.verdict(what, "no quote reached the mart", target.text(), False)
        return
    p95 = percentile(totals, 95)
    detail = (
        f"(p50 {percentile(totals, 50):.1f} s"
        + (f"; stack alone p95 {percentile(alone, 95):.1f} s" if alone else "")
        + ")"
    )
    # A quote that never arrived is not in the percentile: that alone fails the target.
    failure = f"{missing:,} quotes never reached the mart" if missing else ""
    section.check(what, p95, target, detail, failure)
