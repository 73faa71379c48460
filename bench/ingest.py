"""Measurement 1: ingest throughput of ``moonwatch.ingest.consume_and_load`` (no Airflow).

Per size: the messages are produced once to a fresh topic; each repetition then reads them from
the start with a fresh consumer group. Three figures per repetition, all in messages/s over the
time AFTER the consumer group assigned its partitions (tansu's ~3 s join is reported apart):

* loader   - ``consume_and_load(..., max_messages=N)`` into a truncated ``raw.crypto_quotes``
* ceiling a - the same consumer settings reading the same messages with ``Consumer.consume``
  in batches of 5,000 and no database work
* ceiling b - PostgreSQL COPY of the same rows (pre-formatted) into a table shaped like
  ``raw.crypto_quotes`` (same columns, primary key and index), one COPY + commit per 5,000 rows

Then scaling: 1, 2 and 3 loaders at once in one consumer group on a 3-partition topic, each in
its own process (as Airflow runs each mapped load task), beside both ceilings on that topic.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import time
import uuid
from collections import defaultdict
from typing import Any

import psycopg

from bench import sizes as bench_sizes
from bench.common import (
    COINS,
    PROFILE_DIR,
    QuoteFactory,
    Section,
    Target,
    fmt_summary,
    produce_raw,
    summary,
)
from moonwatch import ingest
from moonwatch.kafka import GroupState, open_consumer, wait_for_assignment
from moonwatch.stack import broker

logger = logging.getLogger("bench.ingest")
BATCH = 5000
PARTITIONS = 3


class _AssignmentClock:
    """Wraps ``wait_for_assignment`` as the loader sees it, to time the join apart."""

    def __init__(self) -> None:
        self.assigned_at: float | None = None
        self._original = ingest.wait_for_assignment

    def __enter__(self) -> _AssignmentClock:
        def timed(consumer, *args, **kwargs):
            result = self._original(consumer, *args, **kwargs)
            self.assigned_at = time.perf_counter()
            return result

        ingest.wait_for_assignment = timed
        return self

    def __exit__(self, *exc: object) -> None:
        ingest.wait_for_assignment = self._original


def run_loader(bootstrap: str, topic: str, url: str, n: int) -> dict[str, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate raw.crypto_quotes, raw.crypto_quotes_rejected")
    group = f"bench-load-{uuid.uuid4().hex[:8]}"
    with _AssignmentClock() as clock:
        start = time.perf_counter()
        counts = ingest.consume_and_load(bootstrap, topic, group, url, max_messages=n)
        end = time.perf_counter()
    if counts["inserted"] != n:
        raise RuntimeError(f"loader inserted {counts['inserted']} of {n} ({counts})")
    assert clock.assigned_at is not None
    return {
        "rate": n / (end - clock.assigned_at),
        "join_s": clock.assigned_at - start,
        "wall_s": end - start,
    }


def _group_loader(
    bootstrap: str,
    topic: str,
    group: str,
    url: str,
    loaders: int,
    member: int,
    start: Any,
    results: Any,
) -> None:
    """One loader process of the scaling run: joins with the others (``start`` barrier), loads
    its share until idle, and reports its counts, when the group assigned it partitions, and
    when its last batch was committed in Postgres (the idle wait after it is not loading)."""
    stamps: dict[str, Any] = {"assigned": [], "stored": 0.0}
    on_assign, write = GroupState.on_assign, ingest._write

    def timed_assign(self: GroupState, consumer: Any, partitions: Any) -> None:
        on_assign(self, consumer, partitions)
        stamps["assigned"].append(time.time())

    def timed_write(conn: Any, batch: Any) -> Any:
        result = write(conn, batch)
        stamps["stored"] = time.time()
        return result

    GroupState.on_assign = timed_assign  # type: ignore[method-assign]
    ingest._write = timed_write
    start.wait()
    # No cap: the full run loads 300,000 messages (a task's run stops at 200,000 by default).
    counts = ingest.consume_and_load(
        bootstrap, topic, group, url, idle_s=2.0, max_messages=None, loaders=loaders, member=member
    )
    results.put({**counts, **stamps})


def run_group_loaders(bootstrap: str, topic: str, url: str, n: int, loaders: int) -> dict:
    """``loaders`` processes in one group load ``n`` messages. ``rate``: from the first
    member's assignment to the last Postgres commit, so the rebalances as the others join
    count against it; ``settled_rate``: rows stored once every member had its first
    assignment (the group settled), over the time from then to the end; ``settle_s``: how
    long the joins took."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate raw.crypto_quotes, raw.crypto_quotes_rejected")
    group = f"bench-group-{uuid.uuid4().hex[:8]}"
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(loaders), ctx.Queue()
    procs = [
        ctx.Process(
            target=_group_loader,
            args=(bootstrap, topic, group, url, loaders, member, start, results),
        )
        for member in range(loaders)
    ]
    for proc in procs:
        proc.start()
    done = [results.get(timeout=900) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    inserted = sum(d["inserted"] for d in done)
    if inserted != n:
        raise RuntimeError(f"{loaders} loaders inserted {inserted} of {n} ({done})")
    began = min(d["assigned"][0] for d in done if d["assigned"])
    # Every member's first assignment; the rebalances as loaders leave at the end do not count.
    settled = max(d["assigned"][0] for d in done if d["assigned"])
    ended = max(d["stored"] for d in done)
    with psycopg.connect(url) as conn:
        (after,) = conn.execute(
            "select count(*) from raw.crypto_quotes where loaded_at >= to_timestamp(%s)",
            (settled,),
        ).fetchone()
    return {
        "rate": n / (ended - began),
        "settled_rate": after / (ended - settled) if after and ended > settled else None,
        "settle_s": settled - began,
        "shares": sorted(d["inserted"] for d in done),
    }


def run_consume_ceiling(bootstrap: str, topic: str, n: int) -> dict[str, float]:
    consumer = open_consumer(bootstrap, f"bench-consume-{uuid.uuid4().hex[:8]}", topic)
    try:
        start = time.perf_counter()
        wait_for_assignment(consumer)
        assigned = time.perf_counter()
        seen = 0
        while seen < n:
            for msg in consumer.consume(num_messages=min(BATCH, n - seen), timeout=0.5):
                if msg.error() is None:
                    msg.value()
                    seen += 1
            if time.perf_counter() - assigned > 600:
                raise RuntimeError(f"consumed only {seen} of {n} in 600 s")
        end = time.perf_counter()
    finally:
        consumer.close()
    return {"rate": n / (end - assigned), "join_s": assigned - start, "wall_s": end - start}


def copy_blocks(
    factory: QuoteFactory, messages: list[tuple[bytes, bytes]], topic: str
) -> list[bytes]:
    """COPY text-format blocks of BATCH rows: the loader's temp-table columns, same values."""
    blocks: list[bytes] = []
    lines: list[bytes] = []
    for offset, (_key, value) in enumerate(messages):
        rnd, index = divmod(offset, factory.coins)
        at = (factory.base + dt.timedelta(minutes=rnd)).isoformat()
        # The JSON holds no backslash, tab or newline, so it is valid COPY text as is.
        lines.append(
            b"%d\tUSD\t%s\t%s\t%s\t0\t%d\n"
            % (index + 1, at.encode(), value, topic.encode(), offset)
        )
        if len(lines) == BATCH:
            blocks.append(b"".join(lines))
            lines = []
    if lines:
        blocks.append(b"".join(lines))
    return blocks


def run_copy_ceiling(url: str, blocks: list[bytes], n: int) -> dict[str, float]:
    with psycopg.connect(url) as conn:
        conn.execute(
            "create table if not exists raw.bench_copy_ceiling"
            " (like raw.crypto_quotes including all)"
        )
        conn.execute("truncate raw.bench_copy_ceiling")
        conn.commit()
        start = time.perf_counter()
        for block in blocks:
            with conn.cursor().copy(
                "copy raw.bench_copy_ceiling (coin_id, quote_currency, last_updated, message,"
                " kafka_topic, kafka_partition, kafka_offset) from stdin"
            ) as copy:
                copy.write(block)
            conn.commit()
        end = time.perf_counter()
        rows = conn.execute("select count(*) from raw.bench_copy_ceiling").fetchone()[0]
        conn.execute("truncate raw.bench_copy_ceiling")
        conn.commit()
    if rows != n:
        raise RuntimeError(f"COPY ceiling wrote {rows} of {n} rows")
    return {"rate": n / (end - start)}


# -- profile ---------------------------------------------------------------------------------


def profile_loader(bootstrap: str, topic: str, url: str, n: int) -> tuple[str, list[str]]:
    """A pyinstrument profile of one loader run; (full text, self-time summary lines)."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    profiler.start()
    try:
        run_loader(bootstrap, topic, url, n)
    finally:
        session = profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    (PROFILE_DIR / "ingest.txt").write_text(text)

    buckets: dict[str, float] = defaultdict(float)
    functions: dict[str, float] = defaultdict(float)

    def walk(frame) -> None:
        # A "[self]" frame repeats its parent's self time (pyinstrument shows it as a child).
        if frame.function != "[self]":
            own = frame.total_self_time
            path = frame.file_path or ""
            name = f"{frame.function} ({(path.rsplit('/', 1)[-1]) or '?'}:{frame.line_no})"
            functions[name] += own
            buckets[_bucket(frame)] += own
        for child in frame.children:
            walk(child)

    root = session.root_frame()
    if root is not None:
        walk(root)
    join = buckets.pop("consumer group join (tansu)", 0.0)
    total = sum(buckets.values()) or 1.0
    lines = [
        f"Profiled run: {n:,} messages, {session.duration:.2f} s wall, of which {join:.1f} s "
        "waiting for tansu's group join (left out below). Shares of the remaining sampled time:"
    ]
    lines.append("")
    lines.append("| where | share of samples |")
    lines.append("|---|---|")
    for bucket, seconds in sorted(buckets.items(), key=lambda kv: -kv[1]):
        if seconds / total >= 0.005:
            lines.append(f"| {bucket} | {100 * seconds / total:.1f}% |")
    lines.append("")
    lines.append("Top functions by self time:")
    lines.append("")
    for name, seconds in sorted(functions.items(), key=lambda kv: -kv[1])[:12]:
        if name.startswith("Consumer.poll"):
            continue  # the group join's wait
        lines.append(f"- {100 * seconds / total:.1f}% `{name}`")
    return text, lines


def _bucket(frame) -> str:
    """Attribute a frame's self time to a stage by the nearest known ancestor."""
    f = frame
    while f is not None:
        # Methods come as "Class.method"; native frames hidden under a Python one (pydantic's
        # Rust core under parse_quote_message) count as that Python frame's self time.
        fn, path = (f.function or "").rsplit(".", 1)[-1], f.file_path or ""
        if fn in ("model_validate_json", "parse_quote_message", "split_valid"):
            return "validation (parse_quote_message: pydantic and the field rules)"
        if fn == "model_dump_json" or fn.endswith("to_json"):  # SchemaSerializer.to_json
            return "model JSON for the message column (re-serialising for COPY)"
        if fn in ("_prepare", "prepare_batch", "_copy_text"):
            return "COPY text formatting and in-batch dedupe (prepare_batch)"
        if fn in ("submit", "join") and path.endswith("ordered_thread.py"):
            # pyinstrument samples the main thread only: the writer thread's Postgres work
            # shows up as this wait, once it is longer than the main thread's own work.
            return "main thread waiting for the Postgres writer thread"
        if "psycopg" in path and fn in ("execute", "wait", "wait_c", "__exit__", "_wait"):
            return "PostgreSQL round trips (INSERT ... ON CONFLICT, COPY end, commit)"
        if fn == "consume" or "confluent_kafka" in path:
            return "Kafka consume (librdkafka, and waiting for its fetches)"
        if fn == "commit_offsets":
            return "Kafka offset commit"
        if fn == "wait_for_assignment":
            return "consumer group join (tansu)"
        if fn == "consume_batches":
            return "consume_batches (KafkaRecord building)"
        f = f.parent
    return "other"


# -- the measurement -------------------------------------------------------------------------


def measure(quick: bool) -> Section:
    section = Section("1. Ingest throughput: consume_and_load vs Kafka-only and COPY-only")
    plan = bench_sizes.INGEST[quick].runs
    factory = QuoteFactory(COINS)
    section.add(
        f"Synthetic messages built like tests/factories.py: coin ids 1..{COINS:,}, one round per "
        "minute of `last_updated` (distinct per round), ~"
        f"{len(factory.value(0, 0)[1])} bytes each. Throughput is counted from the moment the "
        "consumer group assigned its partitions (tansu's join, ~3 s, is reported apart); the "
        "loader runs with its defaults (batch 5,000) and `max_messages=N`.",
        "",
        "| messages | loader msg/s | ceiling a: Kafka consume msg/s | ceiling b: COPY rows/s "
        "| loader / lower ceiling | join s | loader wall s |",
        "|---|---|---|---|---|---|---|",
    )
    from bench.common import services

    with services(pg=True, kafka=True) as config:
        url = config.warehouse_url
        bootstrap = config.kafka_bootstrap
        worst_ratio = None
        for n, reps in plan:
            topic = f"bench-ingest-{n}"
            broker.ensure_topic(bootstrap, topic)
            t0 = time.perf_counter()
            messages = list(factory.messages(n))
            produce_raw(iter(messages), bootstrap, topic)
            logger.info("built and produced %d messages in %.1f s", n, time.perf_counter() - t0)
            blocks = copy_blocks(factory, messages, topic)
            del messages
            loader, kafka_c, copy_c, joins, walls = [], [], [], [], []
            for rep in range(reps):
                # Interleaved, so drift in the machine's load hits all three alike.
                k = run_consume_ceiling(bootstrap, topic, n)
                c = run_copy_ceiling(url, blocks, n)
                r = run_loader(bootstrap, topic, url, n)
                logger.info(
                    "n=%d rep %d: loader %.0f/s, kafka %.0f/s, copy %.0f/s",
                    n,
                    rep,
                    r["rate"],
                    k["rate"],
                    c["rate"],
                )
                loader.append(r["rate"])
                kafka_c.append(k["rate"])
                copy_c.append(c["rate"])
                joins.append(r["join_s"])
                walls.append(r["wall_s"])
            del blocks
            ratios = [lr / min(kr, cr) for lr, kr, cr in zip(loader, kafka_c, copy_c, strict=True)]
            rs = summary(ratios)
            worst_ratio = rs["median"] if worst_ratio is None else min(worst_ratio, rs["median"])
            section.add(
                f"| {n:,} | {fmt_summary(summary(loader), '', 0)} | "
                f"{fmt_summary(summary(kafka_c), '', 0)} | {fmt_summary(summary(copy_c), '', 0)} "
                f"| {fmt_summary(rs)} | {summary(joins)['median']:.1f} | "
                f"{summary(walls)['median']:.1f} |"
            )
            section.check(
                f"ingest {n:,} msgs: loader / lower ceiling (median of {reps})",
                rs["median"],
                Target(">=", 0.5),
                f"(loader {summary(loader)['median']:,.0f} msg/s)",
            )

        # The profile, on the smaller size's topic.
        n = plan[-1][0] if quick else plan[0][0]
        topic = f"bench-ingest-{n}"
        _text, prof_lines = profile_loader(bootstrap, topic, url, n)
        section.add("", "### Where the loader's time goes (pyinstrument)", "", *prof_lines)
        section.add(
            "",
            "The full text profile is written to `bench/profiles/ingest.txt` on the machine "
            "that ran the benchmark (rewritten by every run, and not kept in the repository).",
        )
        _measure_scaling(section, factory, bootstrap, url, bench_sizes.INGEST[quick].scaling, quick)
    return section


def _measure_scaling(
    section: Section, factory: QuoteFactory, bootstrap: str, url: str, n: int, quick: bool
) -> None:
    """1, 2 and 3 loaders on a 3-partition topic, interleaved with both ceilings."""
    topic = f"bench-ingest-parts-{n}"
    broker.ensure_topic(bootstrap, topic, partitions=PARTITIONS)
    messages = list(factory.messages(n))
    produce_raw(iter(messages), bootstrap, topic)
    blocks = copy_blocks(factory, messages, topic)
    del messages
    rates: dict[int, list[float]] = {1: [], 2: [], 3: []}
    settled: dict[int, list[float]] = {1: [], 2: [], 3: []}
    settle_s: dict[int, list[float]] = {1: [], 2: [], 3: []}
    kafka_c, copy_c, shares = [], [], {}
    for rep in range(1 if quick else 2):
        kafka_c.append(run_consume_ceiling(bootstrap, topic, n)["rate"])
        copy_c.append(run_copy_ceiling(url, blocks, n)["rate"])
        # Alternating the order cancels the warm-up one run leaves for the next.
        for loaders in (1, 2, 3) if rep % 2 == 0 else (3, 2, 1):
            run = run_group_loaders(bootstrap, topic, url, n, loaders)
            rates[loaders].append(run["rate"])
            if run["settled_rate"] is not None:
                settled[loaders].append(run["settled_rate"])
            settle_s[loaders].append(run["settle_s"])
            shares[loaders] = run["shares"]
            logger.info("n=%d, %d loaders: %.0f msg/s %s", n, loaders, run["rate"], run)
    one = summary(rates[1])["median"]
    section.add(
        "",
        f"### Loaders in one group on a {PARTITIONS}-partition topic ({n:,} messages)",
        "",
        "Each loader is its own process (as each mapped `load_quotes` task is), all joining "
        "one consumer group at once. *msg/s* runs from the first member's assignment to the "
        "last Postgres commit, so the rebalances while the others join count against it; "
        "*once settled* counts only the rows stored once every loader had its first "
        "assignment; *settle s* is how long the joins took. Ceilings measured in the same run "
        "on the same topic.",
        "",
        "| loaders | msg/s | vs 1 loader | once settled msg/s | settle s | rows per loader "
        "| ceiling a: Kafka msg/s | ceiling b: COPY rows/s |",
        "|---|---|---|---|---|---|---|---|",
    )
    for loaders, values in rates.items():
        after = fmt_summary(summary(settled[loaders]), "", 0) if settled[loaders] else "-"
        section.add(
            f"| {loaders} | {fmt_summary(summary(values), '', 0)} | "
            f"{summary(values)['median'] / one:.2f} | {after} | "
            f"{summary(settle_s[loaders])['median']:.1f} | "
            f"{' / '.join(f'{x:,}' for x in shares[loaders])} | "
            f"{fmt_summary(summary(kafka_c), '', 0)} | {fmt_summary(summary(copy_c), '', 0)} |"
        )
