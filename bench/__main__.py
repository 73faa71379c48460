"""`python -m bench [--quick] [--only ingest,dbt,dashboard,stack,growth]`: run, write RESULTS.md."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
import traceback

from bench import sizes
from bench.common import BENCH_DIR, Milestone, Section, machine_info, yield_to_the_stack

ALL = ("ingest", "dbt", "dashboard", "stack")
# Only when named (`--only growth`): its own stack runs after the others, so no two stacks
# share the machine.
OPTIONAL = ("growth",)


def _row_counts(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def _measurements(text: str) -> list[str]:
    only = [s.strip() for s in text.split(",") if s.strip()]
    if unknown := sorted(set(only) - set(ALL) - set(OPTIONAL)):
        raise argparse.ArgumentTypeError(
            f"unknown measurement(s) {unknown}; choose from {','.join(ALL + OPTIONAL)}"
        )
    return only


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="the smoke version at reduced sizes (about 8 minutes)"
    )
    parser.add_argument(
        "--only",
        type=_measurements,
        default=list(ALL),
        help=f"subset of {','.join(ALL + OPTIONAL)} (default: {','.join(ALL)})",
    )
    parser.add_argument("--dbt-sizes", type=_row_counts, help="raw row counts, e.g. 1e6,5e6,1e7")
    parser.add_argument(
        "--window-min",
        type=float,
        help="minutes of sustained load after the stack's rest window (default "
        f"{sizes.STACK[False].load_min:g}; quick {sizes.STACK[True].load_min:g})",
    )
    parser.add_argument(
        "--output", default=str(BENCH_DIR / "RESULTS.md"), help="where the report goes"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("moonwatch.warehouse.migrate", "moonwatch.ingest", "moonwatch.kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    only = args.only

    machine = machine_info()
    started = time.perf_counter()
    sections: list[Section] = []
    write_lock = threading.Lock()

    def guarded(title: str, fn) -> None:
        t = time.perf_counter()
        try:
            result = fn()
            for s in result if isinstance(result, list) else [result]:
                s.seconds = s.seconds or time.perf_counter() - t
                sections.append(s)
        except Exception as e:
            logging.getLogger("bench").exception("%s failed", title)
            failed = Section(title, failed=f"{type(e).__name__}: {e}")
            failed.add("```", traceback.format_exc()[-3000:], "```")
            failed.seconds = time.perf_counter() - t
            sections.append(failed)
        with write_lock:
            _write(args, machine, sections, time.perf_counter() - started, final=False)

    # The stack's part (34 minutes in full mode) is most of the run. Its rest window comes
    # first, alone on the machine: CPU and memory at rest count only the stack. Ingest and dbt
    # then share the machine with the load window (the report says for how long), yielding
    # the CPU to it; the dashboard waits for the stack's part to end.
    others_done, rest_done = Milestone(), Milestone()
    stack_thread = None
    if "stack" in only:
        from bench import stack_load

        stack_thread = threading.Thread(
            target=guarded,
            args=(
                "2 + 5. Freshness and sustained load",
                lambda: stack_load.measure(
                    args.quick, args.window_min, others_done, rest_done=rest_done
                ),
            ),
            daemon=True,
        )
        stack_thread.start()
        while rest_done.at is None and stack_thread.is_alive():
            time.sleep(5)
        if stack_thread.is_alive():
            yield_to_the_stack()
    if "ingest" in only:
        from bench import ingest

        guarded("1. Ingest throughput", lambda: ingest.measure(args.quick))
    if "dbt" in only or "dashboard" in only:
        from bench import dashboard, dbt_incremental

        extra: list[Section] = []
        waits: list[float] = []

        def dash(config, wh, _section) -> None:
            # The page's absolute targets (headline within 2 s, queries p95 under 100 ms) are
            # measured with the stack's load window over, not beside it.
            waited = time.perf_counter()
            if stack_thread is not None:
                stack_thread.join()
            waited = time.perf_counter() - waited
            waits.append(waited)
            t = time.perf_counter()
            try:
                s = dashboard.measure(config, wh, args.quick)
                if waited >= 1:
                    note = f"_Started after waiting {waited / 60:.1f} min for the stack's part._"
                    s.lines[:0] = [note, ""]
            except Exception as e:  # noqa: BLE001
                s = Section("4. Dashboard", failed=f"{type(e).__name__}: {e}")
                s.add("```", traceback.format_exc()[-3000:], "```")
            s.seconds = time.perf_counter() - t
            extra.append(s)

        def dbt_and_dashboard() -> list[Section]:
            section = dbt_incremental.measure(
                args.quick, args.dbt_sizes, keep=[dash] if "dashboard" in only else None
            )
            section.seconds = time.perf_counter() - t0 - sum(s.seconds for s in extra) - sum(waits)
            return [section, *extra]

        t0 = time.perf_counter()
        guarded("3. dbt incremental cost", dbt_and_dashboard)
        if "dashboard" in only and not any(s.title.startswith("4.") for s in sections):
            sections.append(
                Section("4. Dashboard", failed="not run: the dbt warehouse it needs failed")
            )
    others_done.mark()
    if stack_thread is not None:
        stack_thread.join()
    if "growth" in only:
        from bench import growth

        guarded("3b. Bounded growth", lambda: growth.measure(args.quick))
    total = time.perf_counter() - started
    _write(args, machine, sections, total, final=True)
    print(f"bench finished in {total / 60:.1f} min; report: {args.output}")
    return 1 if any(s.failed for s in sections) else 0


def _overrides(args) -> list[str]:
    """What the command changed of the mode's sizes, for the report's header."""
    lines = []
    if args.dbt_sizes:
        rows = ", ".join(f"{n:,}" for n in args.dbt_sizes)
        lines.append(f"**This run's dbt sizes instead: {rows} raw rows.**")
    if args.window_min:
        lines.append(f"**This run's load window instead: {args.window_min:g} minutes.**")
    return lines


def _write(args, machine, sections: list[Section], total: float, final: bool) -> None:
    mode = "quick" if args.quick else "full"
    command = "make bench" + (" BENCH_ARGS=--quick" if args.quick else "")
    if sys.argv[1:] and sys.argv[1:] != ["--quick"]:
        command = "python -m bench " + " ".join(sys.argv[1:])
    out = [
        "# Moonwatch benchmark results",
        "",
        "Written by `python -m bench` (this file is rewritten by every run"
        + ("" if final else "; THIS RUN IS STILL IN PROGRESS or was interrupted")
        + ").",
        "",
        f"- Mode: **{mode}**; command: `{command}`; total wall time {total / 60:.1f} min",
        "- Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items() if k not in ("date",)),
        f"- Date: {machine['date']}",
        f"- Measurements run: {', '.join(args.only)} (of {', '.join(ALL + OPTIONAL)})",
        (
            "- **Quick mode uses reduced sizes** ("
            + "; ".join(sizes.describe(m, quick=True) for m in args.only)
            + "): it proves the harness works; the issue's sizes need `make bench` (full)."
            if args.quick
            else "- Full mode: the issue's sizes ("
            + "; ".join(sizes.describe(m, quick=False) for m in args.only)
            + ")."
        )
        + "".join(f" {line}" for line in _overrides(args)),
        "- The machine is small and noisy (2 cores; the load window of measurements 2 and 5 "
        "runs beside the others), so each figure comes with a ceiling or floor measured in the "
        "same run, and repetitions are given as median (min, max).",
        "",
        "## Verdicts",
        "",
        "| measurement | measured | target | met? |",
        "|---|---|---|---|",
    ]
    for s in sections:
        if s.failed:
            out.append(f"| {s.title} | FAILED: {s.failed[:200]} | | not measured |")
        for what, measured, target, met in s.verdicts:
            verdict = "n/a" if met is None else ("met" if met else "**NOT met**")
            out.append(f"| {what} | {measured} | {target} | {verdict} |")
    for s in sections:
        out += ["", f"## {s.title}", "", f"_({s.seconds / 60:.1f} min)_", ""]
        if s.failed:
            out.append(f"**FAILED**: {s.failed}")
            out.append("")
        out += s.lines
    if not final:
        out += ["", "_(run in progress or interrupted)_"]
    _write_text(args.output, "\n".join(out) + "\n")


def _write_text(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
