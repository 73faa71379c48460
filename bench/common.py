"""Shared bench helpers: throw-away services, synthetic quotes, statistics, machine facts, PSS."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from moonwatch.stack import broker, postgres
from moonwatch.stack.config import StackConfig
from moonwatch.stack.process import free_port

logger = logging.getLogger("bench")

BENCH_DIR = Path(__file__).resolve().parent
PROFILE_DIR = BENCH_DIR / "profiles"
COINS = 5000
PORT_NAMES = (
    "MOONWATCH_PG_PORT",
    "MOONWATCH_KAFKA_PORT",
    "MOONWATCH_AIRFLOW_PORT",
    "MOONWATCH_DASHBOARD_PORT",
    "MOONWATCH_SIM_PORT",
)


# -- results ---------------------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, float]:
    """median, min, max (and n) of repeated measurements."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 100)))  # ceil
    return ordered[min(rank, len(ordered)) - 1]


def fmt_summary(s: dict[str, float], unit: str = "", digits: int = 2) -> str:
    if not s.get("n"):
        return "n/a"
    return (
        f"{s['median']:.{digits}f}{unit} (min {s['min']:.{digits}f}, max {s['max']:.{digits}f}, "
        f"n={s['n']})"
    )


_COMPARE = {
    "<": lambda value, limit: value < limit,
    "<=": lambda value, limit: value <= limit,
    ">=": lambda value, limit: value >= limit,
}


@dataclass(frozen=True)
class Target:
    """A verdict's line, ``value <op> limit``, and how a figure is printed beside it."""

    op: str
    limit: float
    unit: str = ""
    digits: int = 2

    def __post_init__(self) -> None:
        if self.op not in _COMPARE:
            raise ValueError(f"unknown comparison {self.op!r}: use one of {sorted(_COMPARE)}")

    def met(self, value: float) -> bool:
        return _COMPARE[self.op](value, self.limit)

    def text(self) -> str:
        return f"{self.op} {self.limit:g}{self.unit}"

    def show(self, value: float) -> str:
        """``value`` with ``digits`` decimals, or as many more as it takes for the printed
        figure to get the same verdict as the figure itself: at two, 0.497 would read
        "0.50 ... NOT met" against ">= 0.5"."""
        for digits in range(self.digits, self.digits + 6):
            shown = f"{value:.{digits}f}"
            if self.met(float(shown)) == self.met(value):
                return f"{shown}{self.unit}"
        return f"{value!r}{self.unit}"


@dataclass
class Section:
    """One measurement's part of RESULTS.md."""

    title: str
    lines: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, str, str, bool | None]] = field(default_factory=list)
    failed: str | None = None
    seconds: float = 0.0

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def verdict(self, what: str, measured: str, target: str, met: bool | None) -> None:
        """A verdict that is not one number against a line (a list, "reported")."""
        self.verdicts.append((what, measured, target, met))

    def check(
        self, what: str, value: float, target: Target, detail: str = "", failure: str = ""
    ) -> None:
        """``value`` against ``target``; ``detail`` (context, floors) follows the figure. A
        ``failure`` (something the figure cannot show, such as samples that never arrived)
        fails the verdict whatever the value, and is said after the detail."""
        shown = target.show(value) + (f" {detail}" if detail else "")
        shown += f"; {failure}" if failure else ""
        self.verdicts.append((what, shown, target.text(), target.met(value) and not failure))


def machine_info() -> dict[str, str]:
    model = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    load = "?"
    with contextlib.suppress(OSError):
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return {
        "nproc": str(os.cpu_count()),
        "memory": mem,
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": load,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


# -- throw-away services ---------------------------------------------------------------------


def temp_stack_env(prefix: str = "moonwatch-bench-") -> dict[str, str]:
    """Environment for a private stack: temporary MOONWATCH_HOME and free ports.

    Settings exported into this shell (a developer's `eval "$(make -s env)"`) are dropped, so
    nothing here can point at the user's running stack.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MOONWATCH_", "AIRFLOW_", "AIRFLOW__", "CMC_"))
    }
    env["MOONWATCH_HOME"] = tempfile.mkdtemp(prefix=prefix)
    for name in PORT_NAMES:
        env[name] = str(free_port())
    return env


@contextlib.contextmanager
def services(*, pg: bool = True, kafka: bool = True) -> Iterator[StackConfig]:
    """PostgreSQL (bootstrapped warehouse) and/or the tansu broker, stopped and deleted after."""
    env = temp_stack_env()
    config = StackConfig.from_env(env)
    try:
        if pg:
            postgres.start_postgres(config)
            postgres.bootstrap_warehouse(config)
        if kafka:
            broker.start_broker(config)
        yield config
    finally:
        with contextlib.suppress(Exception):
            broker.stop_broker(config)
        with contextlib.suppress(Exception):
            postgres.stop_postgres(config)
        shutil.rmtree(config.home, ignore_errors=True)


# -- synthetic quotes ------------------------------------------------------------------------


class QuoteFactory:
    """Quote message values for coin ids 1..coins, built like tests/factories.py.

    One message per coin is built (and validated) through ``tests.factories.quote_message``;
    each round then re-serialises it with a distinct ``last_updated`` (one minute per round),
    ``fetched_at`` and a slightly moved price, so rounds never collide on the natural key.
    """

    def __init__(self, coins: int = COINS) -> None:
        from tests.factories import quote_message

        self.coins = coins
        self.templates = [
            quote_message(coin_id, 0, 100.0 + coin_id).model_dump(mode="json")
            for coin_id in range(1, coins + 1)
        ]
        self.base = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)

    def value(
        self, index: int, rnd: int, fetched_at: dt.datetime | None = None
    ) -> tuple[bytes, bytes]:
        """(key, value) of coin ``index+1`` in round ``rnd``."""
        template = self.templates[index]
        at = self.base + dt.timedelta(minutes=rnd)
        payload = dict(template)
        payload["last_updated"] = at.isoformat().replace("+00:00", "Z")
        fetched = fetched_at or at + dt.timedelta(seconds=2)
        payload["fetched_at"] = fetched.isoformat().replace("+00:00", "Z")
        payload["price"] = template["price"] * (1 + ((rnd * 7919 + index) % 200 - 100) / 1e4)
        return str(template["coin_id"]).encode(), json.dumps(payload).encode()

    def messages(self, total: int, first_round: int = 0) -> Iterator[tuple[bytes, bytes]]:
        for n in range(total):
            rnd, index = divmod(n, self.coins)
            yield self.value(index, first_round + rnd)


def produce_raw(
    pairs: Iterator[tuple[bytes, bytes]], bootstrap: str, topic: str, timeout_s: float = 120.0
) -> int:
    """Produce pre-serialised (key, value) pairs with the same producer settings as
    ``moonwatch.kafka.produce_quotes`` (acks=all, idempotent); raises if any is not delivered."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": int(timeout_s * 1000),
        }
    )
    failed: list[str] = []
    delivered = 0

    def on_delivery(err, _msg) -> None:
        nonlocal delivered
        if err is None:
            delivered += 1
        else:
            failed.append(err.str())

    sent = 0
    for key, value in pairs:
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.2)
        sent += 1
        if sent % 10_000 == 0:
            producer.poll(0)
    producer.flush(timeout_s)
    if delivered != sent:
        raise RuntimeError(f"only {delivered} of {sent} messages delivered: {failed[:3]}")
    return delivered


# -- processes and memory --------------------------------------------------------------------


def children_map() -> dict[int, list[int]]:
    """Every running process's children, by parent PID (from /proc/PID/stat)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def process_tree(
    pid: int, children: dict[int, list[int]] | None = None, stop: frozenset[int] = frozenset()
) -> list[int]:
    """``pid`` and its descendants, but not those of ``stop`` nor below them."""
    children = children if children is not None else children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(c for c in children.get(p, []) if c not in stop)
    return out


class Memory(NamedTuple):
    """One process's memory in KiB, from one read of its smaps_rollup."""

    pss: int  # its proportional share: shared pages divided among their sharers
    shmem: int  # the part of ``pss`` in shared memory (PostgreSQL's buffer cache)
    uss: int  # its private pages: what its exit would free
    # Its anonymous pages (heap, stacks), each counted whole, whether or not a process it
    # forked still shares it: what it has allocated and kept, which no other process's fork or
    # exit moves (PSS and USS do: a parent's share of the pages a forked child shares doubles
    # when the child exits).
    anonymous: int = 0


def memory_kib(pid: int) -> Memory:
    """One process's :class:`Memory`; all zero if it is gone."""
    fields = {"Pss": 0, "Pss_Shmem": 0, "Private_Clean": 0, "Private_Dirty": 0, "Anonymous": 0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in fields:
                fields[name] = int(value.split()[0])
    return Memory(
        fields["Pss"],
        fields["Pss_Shmem"],
        fields["Private_Clean"] + fields["Private_Dirty"],
        fields["Anonymous"],
    )


def service_roots(run_dir: Path) -> Iterator[tuple[str, int]]:
    """(service, PID) per PID file in ``run_dir`` whose process is running."""
    for pid_file in sorted(run_dir.glob("*.pid")):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().split()[0])
            if Path(f"/proc/{pid}").exists():
                yield pid_file.stem, pid


def service_trees(
    run_dir: Path, children: dict[int, list[int]] | None = None
) -> dict[str, list[int]]:
    """Per running service in ``run_dir``: its process and descendants, each PID once. A
    descendant that is another service's process is that service's, with its own tree (the
    Airflow fork server's children are the four components)."""
    roots = dict(service_roots(run_dir))
    children = children if children is not None else children_map()
    own = frozenset(roots.values())
    return {name: process_tree(pid, children, stop=own) for name, pid in roots.items()}


def service_pss(run_dir: Path) -> dict[str, tuple[float, int, float]]:
    """Per service in ``run_dir``: (PSS MiB of its tree (:func:`service_processes`),
    #processes, the part of that PSS in shared memory: PostgreSQL's buffer cache)."""
    return pss_totals(service_processes(run_dir))


# process_role of the LocalExecutor's workers, and of one that runs no task.
EXECUTOR_WORKER_ROLE = "airflow worker"
IDLE_WORKER_ROLE = f"{EXECUTOR_WORKER_ROLE} (idle)"
# Every process below an executor worker: the task's (see _below_worker).
TASK_ROLE = "airflow task"


def process_role(pid: int) -> str:
    """What a process is, in a few words, from its command line: "airflow scheduler",
    "airflow worker" (the LocalExecutor's, "(idle)" when it runs no task), "postgres backend",
    "streamlit run"; "" once it has exited."""
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        # Split on spaces too: Airflow's processes set their title as one string.
        args = raw.decode(errors="replace").replace("\0", " ").split()
        title = " ".join(args)
        if title.startswith("postgres:"):
            return "postgres backend" if "(" in title else " ".join(args[:2])
        words: list[str] = []
        skip = False
        for arg in args:
            name = Path(arg).name
            if skip or name.startswith("python"):
                skip = False
            elif arg.startswith("-"):
                # "-m module" names the program; any other option's value says nothing.
                skip = arg != "-m" and "=" not in arg
            else:
                words.append(name)
        role = " ".join(words[:2])
        return IDLE_WORKER_ROLE if role == EXECUTOR_WORKER_ROLE and "<idle>" in title else role
    return ""


class Process(NamedTuple):
    role: str  # see process_role
    pss: float  # MiB
    uss: float  # MiB
    under_worker: bool  # it is, or runs under, one of the LocalExecutor's workers
    shmem: float = 0.0  # MiB of ``pss`` in shared memory (PostgreSQL's buffer cache)
    pid: int = 0
    anonymous: float = 0.0  # MiB, see Memory.anonymous

    @property
    def is_task(self) -> bool:
        """A task's process (``service_processes`` gives it that role from its place in the
        tree): it lives as long as its task."""
        return self.role == TASK_ROLE


def lasting_anonymous(processes: dict[str, list[Process]]) -> dict[str, dict[int, float]]:
    """Per service, per PID, MiB of anonymous memory (:attr:`Memory.anonymous`) held by its
    long-lived processes: every process but the tasks' (which take their memory with them when
    their task ends). Anonymous, not PSS: the LocalExecutor forks its workers from the
    scheduler, so the scheduler's PSS rises by half the pages it shared with a worker when that
    worker is let go, and growth by PSS would blame the scheduler for a worker's exit."""
    return {
        name: {p.pid: p.anonymous for p in procs if not p.is_task}
        for name, procs in processes.items()
    }


class Flatness(NamedTuple):
    """One service's long-lived anonymous memory (:func:`lasting_anonymous`) in the middle
    and the last third of a window's samples."""

    middle: float  # MiB, median over the middle third's samples of the service's sum
    last: float  # the same over the last third
    processes: tuple[float, float]  # median count of long-lived processes, middle / last
    # MiB of the processes that lived through both thirds, each the median of its samples
    survivors_middle: float
    survivors_last: float
    survivors: int

    @property
    def growth(self) -> float | None:
        """How much the processes that lived through both thirds grew: last / middle. None
        if no process did (the service restarted)."""
        return self.survivors_last / self.survivors_middle if self.survivors_middle else None


def _sum_of_medians(samples: list[dict[int, float]], pids: set[int]) -> float:
    return sum(statistics.median(s[pid] for s in samples) for pid in pids)


def flatness(lasting: list[dict[str, dict[int, float]]]) -> dict[str, Flatness]:
    """Per service, :class:`Flatness` of the samples ``lasting`` (:func:`lasting_anonymous`,
    in time order), the first third left out as warm-up. Growth compares each process with
    itself (by PID): a pool that forks a worker as tasks wait and lets it go when idle (the
    LocalExecutor's, Postgres's connections) changes how many processes the sum holds, which
    is its configured bound at work (``parallelism``, ``max_connections``), not memory that a
    process keeps and never gives back. Empty if fewer than 6 samples."""
    if len(lasting) < 6:
        return {}
    third = len(lasting) // 3
    middle, last = lasting[third : 2 * third], lasting[2 * third :]
    out: dict[str, Flatness] = {}
    for name in sorted({n for s in middle + last for n in s}):
        per_middle = [s.get(name, {}) for s in middle]
        per_last = [s.get(name, {}) for s in last]
        both = set.intersection(*(set(s) for s in per_middle + per_last))
        out[name] = Flatness(
            statistics.median(sum(s.values()) for s in per_middle),
            statistics.median(sum(s.values()) for s in per_last),
            (
                statistics.median(len(s) for s in per_middle),
                statistics.median(len(s) for s in per_last),
            ),
            _sum_of_medians(per_middle, both),
            _sum_of_medians(per_last, both),
            len(both),
        )
    return out


def pss_totals(processes: dict[str, list[Process]]) -> dict[str, tuple[float, int, float]]:
    """:func:`service_pss` of processes already read (one walk of /proc serves both it and
    :func:`lasting_anonymous`)."""
    return {
        name: (sum(p.pss for p in procs), len(procs), sum(p.shmem for p in procs))
        for name, procs in processes.items()
    }


def _below_worker(pid: int, roles: dict[int, str], parent: dict[int, int]) -> bool:
    """Whether an ancestor of ``pid`` in its tree (``roles``) is an executor worker: ``pid``
    is a task's process. Its title cannot say: Airflow's task process is forked from the
    worker and keeps the worker's title ("airflow worker -- LocalExecutor: <task id>")."""
    pid = parent.get(pid, 0)
    while pid in roles:
        if roles[pid].startswith(EXECUTOR_WORKER_ROLE):
            return True
        pid = parent.get(pid, 0)
    return False


def service_processes(run_dir: Path) -> dict[str, list[Process]]:
    """Per service in ``run_dir``: a :class:`Process` for each process of its tree
    (:func:`service_trees`) still running."""
    children = children_map()
    parent = {child: pid for pid, kids in children.items() for child in kids}
    out: dict[str, list[Process]] = {}
    for name, tree in service_trees(run_dir, children).items():
        roles = {pid: process_role(pid) for pid in tree}
        found = []
        for pid, role in roles.items():
            if not role:
                continue
            task = _below_worker(pid, roles, parent)
            memory = memory_kib(pid)
            found.append(
                Process(
                    TASK_ROLE if task else role,
                    memory.pss / 1024,
                    memory.uss / 1024,
                    task or role.startswith(EXECUTOR_WORKER_ROLE),
                    memory.shmem / 1024,
                    pid,
                    memory.anonymous / 1024,
                )
            )
        if found:
            out[name] = found
    return out


class Milestone:
    """A moment one thread marks and another reads later: when it happened, or None."""

    def __init__(self) -> None:
        self.at: float | None = None

    def mark(self) -> None:
        self.at = self.at or time.time()


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


# How much lower the measurements beside the stack's load window run (yield_to_the_stack).
NEIGHBOUR_NICENESS = 10


def yield_to_the_stack() -> None:
    """The measurements that run beside the stack's load window (and every process they start)
    take CPU at a lower priority than the stack under test (nice +NEIGHBOUR_NICENESS).

    The bench runs them beside it only to keep a full run under 40 minutes; at equal priority
    they took a core and more from a stack measured for what it does on a machine of its own
    (its freshness at 5,000 coins a minute, its CPU under load). Ingest's verdicts are ratios
    to ceilings measured at the same priority in the same run; dbt's times can only come out
    slower for it, and the report would show that. Linux keeps a nice value per thread, and
    a thread or process inherits its creator's: only this thread (and what it starts from here
    on) is lowered, not the stack's thread started before it."""
    me = threading.get_native_id()
    niceness = min(19, os.getpriority(os.PRIO_PROCESS, me) + NEIGHBOUR_NICENESS)
    os.setpriority(os.PRIO_PROCESS, me, niceness)
