"""Measurements 2 and 5, in one window of a full local stack of our own.

``python -m moonwatch.stack up`` in a temporary MOONWATCH_HOME on free ports (Postgres, tansu,
simulator, Airflow 3, dashboard), ``down`` at the end, always. While it runs:

* sustained load (5): every minute, 5,000 synthetic quotes (coin ids 900001..905000, so they
  never collide with the simulator's coins) are produced into the stack's topic with the
  settings of ``moonwatch.kafka.produce_quotes`` (acks=all, idempotent; delivery offsets are
  recorded). ``crypto_quotes_produce`` is paused for the window: a deployment tracking 5,000
  coins makes one round a minute (one ``quotes/latest`` call), and the simulator's 10 coins
  arriving at another second of the minute would make it two loads and two builds a minute,
  which no such deployment runs. It is unpaused for the at-rest window.
  Every 30 s: the committed offset of group ``moonwatch-quotes-loader`` (a Consumer
  with that group.id calling ``committed()``; it never subscribes, so it never joins the group)
  against the log end known from our delivery reports, and the PSS of every service's process
  tree (PID files in $MOONWATCH_HOME/run and their descendants), idle before the load and under
  it.
* freshness (2): see ``bench.freshness`` (the mart poller and the per-stage breakdown from
  Airflow's metadata database).
* at rest, first: once the stack has warmed up (``warmup_min``: the DAGs registered, the first
  listings, FX and dbt runs done), the simulator's 10 coins only, for ``rest_min`` minutes, with
  nothing else of the bench running. The stack's CPU (:class:`StackCpu`: every process of every
  service's tree, from /proc/PID/stat, beside the whole machine's from /proc/stat), its PSS
  every 30 s, and the 10 coins' freshness. ``rest_done`` is marked when it ends: the other
  measurements start then, beside the load window, at a lower CPU priority
  (``bench.common.yield_to_the_stack``). The load comes after the rest window because
  it leaves memory behind that a stack tracking 10 coins never holds (tansu's in-memory log of
  100,000 quotes, Postgres's buffers full of 5,000 coins' rows); the PSS after the drain is
  reported as the 5,000-coin figure. The same CPU figures are given for the load window.

The stack starts with ``MOONWATCH_HISTORY_DAYS=0``: the simulated month of history a fresh
``make up`` backfills is a one-off cost that would otherwise land in the windows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition

from bench import freshness
from bench import sizes as bench_sizes
from bench.common import (
    IDLE_WORKER_ROLE,
    NEIGHBOUR_NICENESS,
    Milestone,
    Process,
    Section,
    Target,
    flatness,
    lasting_anonymous,
    pss_totals,
    service_processes,
    service_pss,
    service_trees,
    temp_stack_env,
)
from bench.freshness import MartPoller, Timeline
from moonwatch.messages import QuoteMessage
from moonwatch.settings import DEFAULT_CONSUMER_GROUP, DEFAULT_TOPIC
from moonwatch.stack.config import CHECKOUT
from moonwatch.worker_pool import IDLE_WORKERS_KEPT, RETIRE_AFTER_SECONDS
from tests.chaos.harness import set_paused, wait_for

logger = logging.getLogger("bench.stack")
GROUP = DEFAULT_CONSUMER_GROUP  # the stack under measurement runs with the defaults
TOPIC = DEFAULT_TOPIC
SYNTH_FIRST_ID = 900_001
SYNTH_COINS = 5000
PRODUCE_DAG = "crypto_quotes_produce"
# The "light at rest" targets, at 10 coins.
TARGET_REST_CORES = 0.25
TARGET_REST_PSS_MIB = 1.2 * 1024


def _stack(env: dict[str, str], command: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "moonwatch.stack", command],
        env=env,
        cwd=CHECKOUT,
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


def _cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` and of its children that it has reaped (cutime + cstime), in
    clock ticks; 0 if it is gone. A task process that lives and dies between two samples is
    counted in its parent's cutime once reaped, so sums over a tree miss no short-lived child."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(f) for f in fields[11:15])  # fields 14..17 of proc(5)
    return 0


def _machine_busy_ticks() -> int:
    """Busy clock ticks of the whole machine since boot (all but idle and iowait), from
    /proc/stat; guest time is already counted in user, so it is left out."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values[:8]) - values[3] - values[4]


class StackCpu:
    """CPU the stack used between :meth:`start` and :meth:`stop`, in cores (CPU seconds per
    wall second): the processes of every service's tree (PID files in $MOONWATCH_HOME/run),
    per service and in total, and, as a ceiling that includes everything else on the machine,
    the machine's busy time from /proc/stat."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.hz = os.sysconf("SC_CLK_TCK")

    def _sample(self) -> tuple[float, dict[str, int], int]:
        per_service = {
            name: sum(_cpu_ticks(p) for p in tree)
            for name, tree in service_trees(self.run_dir).items()
        }
        return time.time(), per_service, _machine_busy_ticks()

    def start(self) -> None:
        self.started = self._sample()

    def stop(self) -> dict:
        """{"seconds": wall, "stack": cores, "machine": cores, "services": {name: cores}}."""
        end = self._sample()
        wall = end[0] - self.started[0]
        services = {
            name: (ticks - self.started[1].get(name, 0)) / self.hz / wall
            for name, ticks in end[1].items()
        }
        return {
            "seconds": wall,
            "stack": sum(services.values()),
            "machine": (end[2] - self.started[2]) / self.hz / wall,
            "services": services,
        }


def task_instances(airflow_db_url: str, start: float, end: float) -> dict[str, int]:
    """Task instances started in ``start..end`` per DAG, from Airflow's metadata database."""
    url = airflow_db_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    with psycopg.connect(url, connect_timeout=10) as conn:
        rows = conn.execute(
            "select dag_id, count(*) from task_instance where start_date >= to_timestamp(%s)"
            " and start_date < to_timestamp(%s) group by dag_id order by dag_id",
            (start, end),
        ).fetchall()
    return dict(rows)


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


def measure(
    quick: bool,
    window_min: float | None = None,
    others_done: Milestone | None = None,
    rest_min: float | None = None,
    rest_done: Milestone | None = None,
) -> Section:
    """The stack at rest, then measurements 2 and 5. ``rest_done`` is marked here when the rest
    window ends (the caller starts the other measurements then); ``others_done`` is marked by
    the caller when they have finished, so freshness under load can be split into the
    overlapped part and the part where the stack ran alone. Warm-up, rest and load by mode:
    bench/sizes.py."""
    window_min = window_min or bench_sizes.STACK[quick].load_min
    rest_min = rest_min or bench_sizes.STACK[quick].rest_min
    warmup_min = bench_sizes.STACK[quick].warmup_min
    rounds = max(1, round(window_min))
    section = Section("2 + 5. Freshness and sustained load in a full local stack of our own")
    env = temp_stack_env()
    env["MOONWATCH_HISTORY_DAYS"] = "0"
    home = Path(env["MOONWATCH_HOME"])
    run_dir = home / "run"
    producer: SyntheticProducer | None = None
    poller: MartPoller | None = None
    try:
        t = time.perf_counter()
        up = _stack(env, "up", timeout=600)
        up_s = time.perf_counter() - t
        if up.returncode != 0:
            raise RuntimeError(f"`moonwatch.stack up` failed:\n{(up.stdout + up.stderr)[-3000:]}")
        section.add(
            f"`python -m moonwatch.stack up` in a temporary MOONWATCH_HOME on free ports took "
            f"{up_s:.0f} s. At rest: after {warmup_min:g} min of warm-up, {rest_min:g} min with "
            "the simulator's 10 coins only and nothing else of the bench running. "
            f"Then the load: {rounds} rounds of 5,000 synthetic quotes, one a minute "
            f"({rounds} minutes at 5,000 coins a minute), as the only quotes: "
            "crypto_quotes_produce is paused for the window (so each minute brings one round, "
            "as it does where 5,000 coins are tracked); then the drain, until every synthetic "
            "quote is in the mart (at most 150 s)."
        )
        from moonwatch.stack.config import StackConfig

        config = StackConfig.from_env(env)
        url, bootstrap = config.warehouse_url, config.kafka_bootstrap
        poller = MartPoller(url)
        poller.start()
        # Idle memory: the running stack with only its simulator traffic, before our load.
        idle_samples = [service_pss(run_dir)]
        time.sleep(1)
        idle_samples.append(service_pss(run_dir))

        rest = at_rest(run_dir, warmup_min, rest_min)
        if rest_done is not None:
            rest_done.mark()
        # `stack up` returns once the services answer; the dag-processor registers the DAGs
        # a little later, and until then Airflow answers 404 for the DAG.
        wait_for(
            lambda: set_paused(config, PRODUCE_DAG, True) is None,
            f"Airflow to register {PRODUCE_DAG} so it can be paused",
            timeout=300,
        )
        producer = SyntheticProducer(bootstrap)
        samples: list[dict] = []
        produce_times: list[float] = []
        cpu = StackCpu(run_dir)
        cpu.start()
        load_start = next_round = next_sample = time.time()
        done_rounds = 0
        while done_rounds < rounds or time.time() < next_sample - 29:
            now = time.time()
            if done_rounds < rounds and now >= next_round:
                produce_times.append(producer.round())
                done_rounds += 1
                next_round += 60
            if now >= next_sample:
                parts = sorted(producer.max_offset) or [0]
                processes = service_processes(run_dir)
                samples.append(
                    {
                        "t": now - load_start,
                        "produced": producer.produced,
                        "log_end": sum(o + 1 for o in producer.max_offset.values()),
                        "committed": committed_offset(bootstrap, parts),
                        "pss": pss_totals(processes),
                        "lasting": lasting_anonymous(processes),
                    }
                )
                next_sample += 30
            time.sleep(0.5)
        # Drain: until every synthetic quote is in the mart, at most 150 s.
        drain_deadline = time.time() + 150
        while time.time() < drain_deadline:
            if poller.seen(SYNTH_FIRST_ID) >= producer.produced:
                break
            time.sleep(1)
        window_end = time.time()
        load_cpu = cpu.stop()
        final_committed = committed_offset(bootstrap, sorted(producer.max_offset) or [0])
        final_pss = service_pss(run_dir)
        set_paused(config, PRODUCE_DAG, False)
        poller.stop_event.set()
        poller.join(10)
        try:
            timeline = Timeline.read(config.airflow_db_url)
        except psycopg.Error as e:
            logger.warning("cannot read Airflow's timeline: %s", e)
            timeline = None
        others_at = others_done.at if others_done is not None else None
        overlap_until = others_at if others_at and load_start < others_at < window_end else None
        if others_done is not None and (others_at is None or others_at > load_start):
            section.add(
                "",
                "The other measurements of this run shared the machine with this window, at a "
                f"lower CPU priority (nice +{NEIGHBOUR_NICENESS}), for its "
                + (
                    f"first {(overlap_until - load_start) / 60:.1f} min"
                    if overlap_until
                    else "whole length"
                )
                + "; freshness is given for the whole window and for each part.",
            )
        freshness.report(
            section,
            poller,
            timeline,
            synthetic_from=SYNTH_FIRST_ID,
            produced=producer.produced,
            overlap_until=overlap_until,
            produce_stats=freshness.stats(produce_times),
            rest=(rest["start"], rest["end"]),
        )
        _report_load(section, samples, idle_samples, final_pss, final_committed, producer)
        _report_rest(
            section,
            rest,
            load_cpu,
            config.airflow_db_url,
            (load_start, window_end),
            [x["pss"] for x in samples] + [final_pss],
        )
    finally:
        if poller is not None:
            poller.stop_event.set()
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


def at_rest(run_dir: Path, warmup_min: float, rest_min: float) -> dict:
    """The stack with only the simulator's 10 coins, for ``rest_min`` minutes after
    ``warmup_min`` minutes of warm-up: its CPU (see :class:`StackCpu`) and PSS (every 30 s)."""
    time.sleep(warmup_min * 60)
    cpu = StackCpu(run_dir)
    cpu.start()
    start = time.time()
    pss: list[dict[str, tuple[float, int, float]]] = []
    while time.time() < start + rest_min * 60:
        pss.append(service_pss(run_dir))
        time.sleep(min(30.0, max(0.0, start + rest_min * 60 - time.time())))
    processes = service_processes(run_dir)
    return {
        "start": start,
        "end": time.time(),
        "cpu": cpu.stop(),
        "pss": pss,
        "processes": processes,
    }


def _report_rest(
    section: Section,
    rest: dict,
    load_cpu: dict,
    airflow_db_url: str,
    load: tuple[float, float],
    load_pss: list[dict[str, tuple[float, int, float]]],
) -> None:
    """The stack's CPU and PSS at rest (10 coins) and under the 5,000/min load (``load_pss``:
    its samples, the one after the drain last), with the task instances Airflow ran in each
    window."""
    cores = os.cpu_count() or 1
    totals = [sum(v[0] for v in sample.values()) for sample in rest["pss"]]
    pss_total = statistics.median(totals) if totals else float("nan")
    try:
        tis = {
            "rest": task_instances(airflow_db_url, rest["start"], rest["end"]),
            "load": task_instances(airflow_db_url, *load),
        }
    except psycopg.Error as e:
        logger.warning("cannot count task instances: %s", e)
        tis = {"rest": {}, "load": {}}
    section.add(
        "",
        "### At rest (10 coins) and under load: CPU and memory",
        "",
        f"CPU in cores (CPU seconds per wall second; the machine has {cores}). *stack*: every "
        "process of every service's tree, from /proc/PID/stat (a reaped task process counts in "
        "its parent); *machine*: all busy time from /proc/stat, a ceiling that includes the "
        "bench itself and anything else running.",
        "",
        "| window | minutes | stack cores | machine cores | task instances a minute (per DAG) |",
        "|---|---|---|---|---|",
    )
    windows = (
        ("at rest, 10 coins", rest["cpu"], tis["rest"]),
        ("5,000 coins/min load (with the drain)", load_cpu, tis["load"]),
    )
    for label, cpu, counts in windows:
        minutes = cpu["seconds"] / 60
        per_dag = ", ".join(f"{d} {n / minutes:.1f}" for d, n in counts.items()) or "n/a"
        section.add(
            f"| {label} | {minutes:.1f} | {cpu['stack']:.2f} | {cpu['machine']:.2f} | "
            f"{sum(counts.values()) / minutes:.1f} ({per_dag}) |"
        )
    for label, cpu, _counts in windows:
        per_service = ", ".join(f"{n} {c:.3f}" for n, c in sorted(cpu["services"].items()))
        section.add("", f"Stack cores per service, {label}: {per_service}.")
    names = sorted({n for sample in rest["pss"] for n in sample})
    per_service = ", ".join(
        f"{n} {statistics.median([s[n][0] for s in rest['pss'] if n in s]):.0f}" for n in names
    )
    load_totals = [sum(v[0] for v in sample.values()) for sample in load_pss]
    section.add(
        "",
        f"PSS at rest, 10 coins (median of {len(totals)} samples, 30 s apart): total "
        f"{pss_total:.0f} MiB; per service: {per_service}.",
        "",
        "PSS at 5,000 coins a minute (median of the load window's samples): total "
        f"{statistics.median(load_totals[:-1] or load_totals):.0f} MiB; after the drain "
        f"{load_totals[-1]:.0f} MiB, of which the broker holds "
        f"{load_pss[-1].get('broker', (0.0, 0))[0]:.0f} MiB: tansu `memory://` keeps every "
        "message of the window in RAM, where Kafka would keep its log on disk.",
    )
    _report_floor(section, rest["processes"])
    section.check(
        "CPU at rest, 10 coins (stack's processes, average over the window)",
        rest["cpu"]["stack"],
        Target("<=", TARGET_REST_CORES, " cores", digits=3),
        f"over {rest['cpu']['seconds'] / 60:.1f} min "
        f"(machine {rest['cpu']['machine']:.3f}; under 5,000/min {load_cpu['stack']:.3f})",
    )
    section.check(
        "PSS at rest, 10 coins (sum over the stack's processes, median)",
        pss_total,
        Target("<=", TARGET_REST_PSS_MIB, " MiB", digits=0),
    )


def _report_floor(section: Section, processes: dict[str, list[Process]]) -> None:
    """Which processes the PSS at rest is made of, and the floor: the stack's long-lived
    processes with the executor's kept idle workers only, the least it holds at rest.

    A process that exits frees only its private pages (USS); the pages it shared stay with
    the processes that share them, whose PSS grows by its share. So the floor is the total
    less the private memory of every executor worker beyond those kept and of the tasks they
    run, not the sum of the other processes' PSS (which would count those shared pages short)."""
    section.add(
        "",
        "What the PSS at rest is made of (every process at the window's end):",
        "",
        "| service | processes: role, count x MiB each | MiB |",
        "|---|---|---|",
    )
    total = under_workers_private = 0.0
    idle_workers: list[Process] = []
    for name, procs in sorted(processes.items()):
        roles: dict[str, list[float]] = {}
        for p in procs:
            roles.setdefault(p.role, []).append(p.pss)
            under_workers_private += p.uss if p.under_worker else 0.0
            if p.role == IDLE_WORKER_ROLE:
                idle_workers.append(p)
        parts = ", ".join(
            f"{role} {len(m)} x {statistics.mean(m):.0f}" for role, m in sorted(roles.items())
        )
        service_total = sum(p.pss for p in procs)
        total += service_total
        section.add(f"| {name} | {parts} | {service_total:.0f} |")
    # A kept worker holds what an idle one holds of its own; none idle at the end: none known.
    kept_private = statistics.median(p.uss for p in idle_workers) if idle_workers else 0.0
    floor = total - under_workers_private + IDLE_WORKERS_KEPT * kept_private
    section.add(
        "",
        f"Total {total:.0f} MiB. The executor forks its workers as tasks wait and lets go "
        f"those idle through {RETIRE_AFTER_SECONDS:.0f} s, "
        + (
            f"keeping {IDLE_WORKERS_KEPT} ready ({len(idle_workers)} idle at the end, "
            f"{kept_private:.0f} MiB private each (median)). Every long-lived process of the "
            f"stack with {IDLE_WORKERS_KEPT} idle worker(s) and no task running"
            if IDLE_WORKERS_KEPT
            else f"keeping none ready ({len(idle_workers)} idle at the end). Every long-lived "
            "process of the stack with no worker and no task running"
        )
        + f" holds {floor:.0f} MiB: the total less the private memory of "
        + ("the other workers" if IDLE_WORKERS_KEPT else "every worker")
        + " and of any task (an exiting process frees only its private pages; what it shared "
        "stays with its sharers). The floor of this stack at rest.",
    )


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
    # Memory: idle (median of idle samples) vs under load. Flatness compares the last third of
    # the load samples with the middle third (the first third is warm-up: Airflow importing),
    # each long-lived process with itself (bench.common.flatness): its anonymous memory, the
    # median of its samples. Task processes are left out (at 5,000 quotes a minute one runs at
    # half the samples or more, in step with the minute), and so are processes that did not
    # live through both thirds: the LocalExecutor forks workers as tasks wait and lets idle
    # ones go, so a sum over the tree says how many workers each third caught. Anonymous
    # memory, not PSS: a worker's exit hands the scheduler the whole of the pages they shared,
    # which PSS counts as the scheduler's growth (bench.common.lasting_anonymous). PostgreSQL's
    # buffer cache is shared memory, not anonymous: it fills up to shared_buffers, a bounded
    # cache, not growth.
    names = sorted({n for s in idle_samples + [x["pss"] for x in samples] for n in s})
    flat = flatness([s["lasting"] for s in samples])
    section.add(
        "",
        "| service (process tree) | PSS idle MiB | under load: first / last / max MiB "
        "| long-lived processes' anonymous memory, middle / last third: MiB (processes) "
        "| of them, those that lived through both thirds: MiB (processes) "
        "| after drain MiB (of it shared memory) |",
        "|---|---|---|---|---|---|",
    )
    growth = []
    for name in names:
        idle = [s[name][0] for s in idle_samples if name in s]
        load = [s["pss"][name][0] for s in samples if name in s["pss"]]
        idle_s = f"{statistics.median(idle):.0f}" if idle else "n/a"
        load_s = f"{load[0]:.0f} / {load[-1]:.0f} / {max(load):.0f}" if load else "n/a"
        thirds = survivors = "n/a"
        if name in flat:
            f = flat[name]
            thirds = f"{f.middle:.0f} ({f.processes[0]:g}) / {f.last:.0f} ({f.processes[1]:g})"
            survivors = f"{f.survivors_middle:.0f} / {f.survivors_last:.0f} ({f.survivors})"
            if name != "broker" and f.growth is not None:
                growth.append((name, f.growth))
        after, _, after_shared = final_pss.get(name, (0.0, 0, 0.0))
        section.add(
            f"| {name} | {idle_s} | {load_s} | {thirds} | {survivors} "
            f"| {after:.0f} ({after_shared:.0f}) |"
        )
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
        "LocalExecutor's task processes and its pool of workers, so its PSS moves with the "
        "tasks and workers running at the sample; its flatness compares the scheduler and each "
        "worker that lived through both thirds with itself (the pool's size is bounded by "
        "Airflow's `parallelism`, as Postgres's connections are by `max_connections`), by its "
        "anonymous memory: the workers are forked from the scheduler, and when one is let go "
        "the scheduler's PSS takes on the whole of the pages they shared, which is not growth.",
    )
    if growth:
        worst = max(growth, key=lambda g: g[1])
        section.check(
            "memory flat under load (long-lived processes that lived through both thirds, "
            "anonymous memory, median of last third / middle third, worst service)",
            worst[1],
            Target("<=", 1.1),
            f"({worst[0]})",
        )
