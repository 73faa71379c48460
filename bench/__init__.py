"""Moonwatch benchmarks (issue 8): ``make bench`` (full) or ``make bench BENCH_ARGS=--quick``.

Every measurement starts its own throw-away services on free ports in a temporary
MOONWATCH_HOME and stops them at the end, also on failure; the user's running stack on the
default ports is never touched. Results (with the machine they ran on) go to bench/RESULTS.md.
"""
