"""The loader's writer thread (``OrderedThread``): in order, one at a time, first error stops it."""

from __future__ import annotations

import threading

import pytest

from moonwatch.ordered_thread import OrderedThread


class Recorder:
    """A work function that notes what ran, on which thread, and whether runs overlapped."""

    def __init__(self, fail_on: int | None = None, gate: threading.Event | None = None) -> None:
        self.ran: list[int] = []
        self.threads: set[int] = set()
        self.running = 0
        self.overlapped = False
        self.fail_on = fail_on
        self.gate = gate
        self.started = threading.Event()

    def __call__(self, item: int) -> int:
        self.started.set()
        self.running += 1
        self.overlapped |= self.running > 1
        self.threads.add(threading.get_ident())
        if self.gate is not None:
            assert self.gate.wait(10)
        self.running -= 1
        if item == self.fail_on:
            raise RuntimeError(f"item {item} failed")
        self.ran.append(item)
        return item * 10


def test_ordered_thread_runs_items_in_submission_order_on_one_background_thread() -> None:
    work = Recorder()
    thread: OrderedThread[int, int] = OrderedThread(work, depth=2)
    seen = []
    for item in range(20):
        thread.submit(item)
        seen += thread.completed()
    seen += thread.join()
    assert seen == [(item, item * 10) for item in range(20)]
    assert work.ran == list(range(20)) and not work.overlapped
    assert work.threads and threading.get_ident() not in work.threads


def test_ordered_thread_error_stops_later_items_and_surfaces_in_the_main_thread() -> None:
    gate = threading.Event()
    work = Recorder(fail_on=1, gate=gate)
    thread: OrderedThread[int, int] = OrderedThread(work, depth=3)
    for item in range(4):  # all queued before the first one may run
        thread.submit(item)
    gate.set()
    with pytest.raises(RuntimeError, match="item 1 failed"):
        thread.join()
    assert work.ran == [0]  # items 2 and 3 never ran: nothing is written after a failure
    assert thread.completed() == [(0, 0)]  # only what finished is handed back
    with pytest.raises(RuntimeError, match="item 1 failed"):
        thread.submit(4)
    thread.cancel()  # safe after a failure; never raises


def test_ordered_thread_cancel_skips_items_not_started() -> None:
    gate = threading.Event()
    work = Recorder(gate=gate)
    thread: OrderedThread[int, int] = OrderedThread(work, depth=3)
    for item in range(3):
        thread.submit(item)
    assert work.started.wait(10)
    threading.Timer(0.2, gate.set).start()
    thread.cancel()  # waits for the running item, skips the rest
    assert work.ran == [0]
