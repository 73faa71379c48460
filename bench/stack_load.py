"""Measurements 2 and 5, in one window of a full local stack of our own.

``python -m moonwatch.stack up`` in a temporary MOONWATCH_HOME on free ports (Postgres, tansu,
simulator, Airflow 3, dashboard), ``down`` at the end, always. While it runs:

* sustained load (5): every minute, 5,000 synthetic quotes (coin ids 900001..905000, so they
  never collide with the simulator's coins) are produced into the stack's topic with the
  settings of ``moonwatch.kafka.produce_quotes`` (acks=all, idempotent; delivery offsets are
  recorded). Every 30 s: the committed offset of group ``moonwatch-quotes-loader`` (a Consumer
  with that group.id calling ``committed()``; it never subscribes, so it never joins the group)
  against the log end known from our delivery reports, and the PSS of every service's process
  tree (PID files in $MOONWATCH_HOME/run and their descendants), idle before the load and under
  it.
* freshness (2): marts.quotes_coins is polled every second; the first time each
  (coin_id, last_updated) is seen is recorded. Per quote: fetched_at -> raw loaded_at (sensor +
  load) and raw loaded_at -> first seen in the mart (Asset trigger + dbt).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition

from bench.common import (
    Section,
    percentile,
    service_pss,
    temp_stack_env,
)
from moonwatch.messages import QuoteMessage
from moonwatch.settings import PROJECT_ROOT

logger = logging.getLogger("bench.stack")
GROUP = "moonwatch-quotes-loader"
TOPIC = "crypto"
SYNTH_FIRST_ID = 900_001
SYNTH_COINS = 5000


def _stack(env: dict[str, str], command: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "moonwatch.stack", command],
        env={**env, "PYTHONPATH": str(PROJECT_ROOT / "plugins")},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class SyntheticProducer:
    """5,000 quotes a call, validated as QuoteMessage, produced like produce_quotes."""

    def __init__(self, bootstrap: str) -> None:
        from tests.factories import quote_message

        self.templates = [
            quote_message(1, 0, 10.0 + i).model_dump(mode="json") for i in range(SYNTH_COINS)
        ]
        for i, t in enumerate(self.templates):
            cid = SYNTH_FIRST_ID + i
            t.update(coin_id=cid, symbol=f"S{cid}", name=f"Synthetic {cid}", slug=f"syn-{cid}")
            t["cmc_rank"] = 100 + i
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "compression.type": "none",
                "linger.ms": 5,
                "message.timeout.ms": 30_000,
            }
        )
        self.produced = 0
        self.max_offset: dict[int, int] = {}
        self.errors: list[str] = []

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self.errors.append(err.str())
            return
        self.produced += 1
        p = msg.partition()
        self.max_offset[p] = max(self.max_offset.get(p, -1), msg.offset())

    def close(self) -> None:
        """Drop the client before the broker stops (else librdkafka reconnects noisily)."""
        import gc

        if self.producer is not None:
            self.producer.flush(5)
            self.producer = None
            gc.collect()

    def round(self) -> float:
        """Produce one minute of quotes stamped now; returns seconds it took."""
        start = time.perf_counter()
        now = dt.datetime.now(dt.UTC)
        for i, template in enumerate(self.templates):
            payload = {**template, "last_updated": now.replace(microsecond=0), "fetched_at": now}
            payload["price"] = template["price"] * (1 + (i % 7) / 1000)
            message = QuoteMessage.model_validate(payload)
            while True:
                try:
                    self.producer.produce(
                        TOPIC,
                        key=message.key,
                        value=message.to_bytes(),
                        on_delivery=self._on_delivery,
                    )
                    break
                except BufferError:
                    self.producer.poll(0.2)
        self.producer.flush(60)
        return time.perf_counter() - start


class MartPoller(threading.Thread):
    """Polls marts.quotes_coins every second; first-seen time per (coin_id, last_updated_at)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.first_seen: dict[tuple[int, dt.datetime], tuple[float, dt.datetime, dt.datetime]] = {}
        self.stop_event = threading.Event()
        self.errors = 0
        self.polls = 0

    def run(self) -> None:
        wm: dt.datetime | None = None
        conn = None
        while not self.stop_event.is_set():
            started = time.time()
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                rows = conn.execute(
                    "select coin_id, last_updated_at, fetched_at, loaded_at"
                    " from marts.quotes_coins where loaded_at > %s",
                    (wm or dt.datetime(2000, 1, 1, tzinfo=dt.UTC),),
                ).fetchall()
                seen_at = time.time()
                self.polls += 1
                for coin_id, updated, fetched, loaded in rows:
                    key = (coin_id, updated)
                    if key not in self.first_seen:
                        self.first_seen[key] = (seen_at, fetched, loaded)
                if rows:
                    newest = max(r[3] for r in rows)
                    # 90 s slack: a late commit can land a row older than the newest seen.
                    wm = max(wm or newest, newest - dt.timedelta(seconds=90))
            except psycopg.Error:
                self.errors += 1  # the mart may not exist yet, or a dbt swap holds a lock
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
            self.stop_event.wait(max(0.0, 1.0 - (time.time() - started)))
        if conn is not None:
            conn.close()


def committed_offset(bootstrap: str, partitions: list[int]) -> int | None:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False}
    )
    try:
        got = consumer.committed([TopicPartition(TOPIC, p) for p in partitions], timeout=10)
        return sum(max(tp.offset, 0) for tp in got)
    except Exception:  # noqa: BLE001 - report the sample as missing
        return None
    finally:
        consumer.close()


def _stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (
        f"p50 {percentile(values, 50):.1f} s, p95 {percentile(values, 95):.1f} s, "
        f"max {max(values):.1f} s (n={len(values):,})"
    )


def measure(quick: bool, window_min: float | None = None) -> Section:
    window_min = window_min or (1.5 if quick else 5.0)
    section = Section("2 + 5. Freshness and sustained load in a full local stack of our own")
    env = temp_stack_env()
    home = Path(env["MOONWATCH_HOME"])
    run_dir = home / "run"
    producer: SyntheticProducer | None = None
    try:
        t = time.perf_counter()
        up = _stack(env, "up", timeout=600)
        up_s = time.perf_counter() - t
        if up.returncode != 0:
            raise RuntimeError(f"`moonwatch.stack up` failed:\n{(up.stdout + up.stderr)[-3000:]}")
        section.add(
            f"`python -m moonwatch.stack up` in a temporary MOONWATCH_HOME on free ports took "
            f"{up_s:.0f} s. Load window: {window_min:g} min of 5,000 synthetic quotes per minute "
            "(plus the simulator's own quotes via crypto_quotes_produce), then up to 90 s "
            "(quick) / 150 s (full) to drain."
        )
        from moonwatch.stack.config import StackConfig

        config = StackConfig.from_env(env)
        url, bootstrap = config.warehouse_url, config.kafka_bootstrap

        # Idle: the stack with only its own simulator traffic; wait for the pipeline to
        # prove itself (a first mart row) for up to 3 minutes, sampling memory meanwhile.
        idle_samples: list[dict[str, tuple[float, int]]] = []
        poller = MartPoller(url)
        poller.start()
        deadline = time.monotonic() + (15 if quick else 180)
        while time.monotonic() < deadline:
            idle_samples.append(service_pss(run_dir))
            if (poller.first_seen or quick) and len(idle_samples) >= 3:
                break
            time.sleep(10)
        warm = bool(poller.first_seen)
        section.add(
            "",
            "Pipeline warm before the load (a simulator quote reached marts.quotes_coins): "
            + ("yes" if warm else "NO - no mart row within the idle wait"),
        )

        producer = SyntheticProducer(bootstrap)
        samples: list[dict] = []
        produce_times: list[float] = []
        load_start = time.time()
        next_round = time.time()
        next_sample = time.time()
        rounds = max(1, round(window_min))
        done_rounds = 0
        end = load_start + window_min * 60
        while time.time() < end or done_rounds < rounds:
            now = time.time()
            if done_rounds < rounds and now >= next_round:
                produce_times.append(producer.round())
                done_rounds += 1
                next_round += 60
            if now >= next_sample:
                parts = sorted(producer.max_offset) or [0]
                committed = committed_offset(bootstrap, parts)
                log_end = sum(o + 1 for o in producer.max_offset.values())
                samples.append(
                    {
                        "t": now - load_start,
                        "produced": producer.produced,
                        "log_end": log_end,
                        "committed": committed,
                        "pss": service_pss(run_dir),
                    }
                )
                next_sample += 30
            time.sleep(0.5)
        # Drain: until every synthetic quote is in the mart, at most 150 s.
        drain_deadline = time.time() + (90 if quick else 150)
        expected = producer.produced
        while time.time() < drain_deadline:
            synth = sum(1 for k in poller.first_seen if k[0] >= SYNTH_FIRST_ID)
            if synth >= expected:
                break
            time.sleep(2)
        parts = sorted(producer.max_offset) or [0]
        final_committed = committed_offset(bootstrap, parts)
        final_pss = service_pss(run_dir)
        poller.stop_event.set()
        poller.join(10)

        _report_freshness(section, poller, producer, load_start, produce_times)
        _report_load(section, samples, idle_samples, final_pss, final_committed, producer)
    finally:
        if producer is not None:
            producer.close()
        t = time.perf_counter()
        with contextlib.suppress(Exception):
            down = _stack(env, "down", timeout=180)
            logger.info("stack down: %s", down.stdout.strip())
        section.add("", f"`moonwatch.stack down` took {time.perf_counter() - t:.0f} s.")
        if not os.environ.get("MOONWATCH_KEEP_BENCH_HOME"):
            shutil.rmtree(home, ignore_errors=True)
    return section


def _report_freshness(section, poller, producer, load_start, produce_times) -> None:
    synth = {k: v for k, v in poller.first_seen.items() if k[0] >= SYNTH_FIRST_ID}
    sim = {
        k: v
        for k, v in poller.first_seen.items()
        if k[0] < SYNTH_FIRST_ID and v[2] is not None and v[2].timestamp() >= load_start - 300
    }
    section.add(
        "",
        "### Freshness (measurement 2)",
        "",
        f"Mart polls: {poller.polls:,} (1 s apart; failed polls {poller.errors}). Synthetic "
        f"quotes produced {producer.produced:,}, seen in the mart {len(synth):,}"
        + (f", delivery errors {len(producer.errors)}" if producer.errors else "")
        + f". Producing one round of 5,000 took {_stats(produce_times)}.",
        "",
        "| quotes | fetched_at -> mart (total) | fetched_at -> raw loaded_at (sensor + load) "
        "| raw loaded_at -> mart first seen (Asset + dbt) |",
        "|---|---|---|---|",
    )
    totals = []
    for label, rows in (("synthetic 5,000/min", synth), ("simulator (DAG producer)", sim)):
        total = [seen - f.timestamp() for seen, f, _l in rows.values() if f is not None]
        load = [lo.timestamp() - f.timestamp() for _s, f, lo in rows.values() if f is not None]
        mart = [seen - lo.timestamp() for seen, _f, lo in rows.values()]
        section.add(f"| {label} | {_stats(total)} | {_stats(load)} | {_stats(mart)} |")
        if label.startswith("synthetic"):
            totals = total
    if totals:
        p95 = percentile(totals, 95)
        missing = producer.produced - len(synth)
        section.verdict(
            "freshness p95, fetched_at -> marts.quotes_coins (synthetic)",
            f"{p95:.1f} s (p50 {percentile(totals, 50):.1f} s)"
            + (f"; {missing:,} quotes never reached the mart in the window" if missing else ""),
            "< 30 s",
            p95 < 30 and missing == 0,
        )
    else:
        section.verdict("freshness p95", "no synthetic quote reached the mart", "< 30 s", False)


def _report_load(section, samples, idle_samples, final_pss, final_committed, producer) -> None:
    section.add(
        "",
        "### Sustained load (measurement 5)",
        "",
        "Consumer lag = log end (from our delivery reports; includes the simulator's messages "
        "before our last one) - committed offset of `moonwatch-quotes-loader`.",
        "",
        "| t s | produced (ours) | log end | committed | lag | PSS MiB per service |",
        "|---|---|---|---|---|---|",
    )
    lags = []
    for s in samples:
        lag = None if s["committed"] is None else s["log_end"] - s["committed"]
        if lag is not None:
            lags.append(lag)
        pss = ", ".join(f"{k} {v[0]:.0f}" for k, v in s["pss"].items())
        section.add(
            f"| {s['t']:.0f} | {s['produced']:,} | {s['log_end']:,} | {s['committed']} | "
            f"{lag if lag is not None else 'n/a'} | {pss} |"
        )
    log_end = sum(o + 1 for o in producer.max_offset.values())
    final_lag = None if final_committed is None else log_end - final_committed
    section.add(
        "", f"After the drain: log end {log_end:,}, committed {final_committed}, lag {final_lag}."
    )
    bounded = bool(lags) and max(lags) <= 2 * SYNTH_COINS + 500
    section.verdict(
        "consumer lag bounded under 5,000 quotes/min",
        f"max sampled lag {max(lags) if lags else 'n/a'}, after drain {final_lag}",
        "bounded (<= 2 rounds), 0 after drain",
        bounded and final_lag is not None and final_lag <= 0,
    )
    # Memory: idle (median of idle samples) vs under load (first, last, max of load samples).
    names = sorted({n for s in idle_samples + [x["pss"] for x in samples] for n in s})
    section.add(
        "",
        "| service (process tree) | PSS idle MiB | under load: first / last / max MiB "
        "| after drain MiB |",
        "|---|---|---|---|",
    )
    growth = []
    for name in names:
        idle = [s[name][0] for s in idle_samples if name in s]
        load = [s["pss"][name][0] for s in samples if name in s["pss"]]
        idle_s = f"{sorted(idle)[len(idle) // 2]:.0f}" if idle else "n/a"
        load_s = f"{load[0]:.0f} / {load[-1]:.0f} / {max(load):.0f}" if load else "n/a"
        after = final_pss.get(name, (0.0, 0))[0]
        section.add(f"| {name} | {idle_s} | {load_s} | {after:.0f} |")
        if len(load) >= 4 and name != "broker":
            half = len(load) // 2
            first_half = max(load[:half])
            growth.append((name, max(load[half:]) / first_half if first_half else 1.0))
    total_idle = sum(
        sorted(v)[len(v) // 2]
        for v in ([s[n][0] for s in idle_samples if n in s] for n in names)
        if v
    )
    section.add(
        "",
        f"Total PSS idle: {total_idle:.0f} MiB. The broker (tansu with `memory://` storage) keeps "
        "the whole log in RAM, so its PSS grows with every message by design (~3 MB per 5,000 "
        "quotes); it is left out of the flatness verdict. Airflow's scheduler tree includes the "
        "LocalExecutor's task processes, so it moves with the tasks running at the sample.",
    )
    if growth:
        worst = max(growth, key=lambda g: g[1])
        section.verdict(
            "memory flat under load (max of 2nd half / max of 1st half, worst service)",
            f"{worst[1]:.2f} ({worst[0]})",
            "<= 1.10",
            worst[1] <= 1.10,
        )
