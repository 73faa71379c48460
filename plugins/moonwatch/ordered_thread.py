"""One background thread that runs a function over items in order, for a two-stage pipeline.

The loader uses it to overlap Postgres with Kafka: while the thread writes and commits batch k,
the main thread consumes and validates batch k+1. Results come back in submission order, so
the main thread commits each batch's Kafka offsets only after that batch's Postgres commit, in
order. The first failure stops the thread: nothing submitted after it runs, and the main thread
gets the same exception from its next ``submit`` or ``join``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")
_STOP = object()


class OrderedThread(Generic[T, R]):
    """Runs ``work(item)`` on one thread for each submitted item, in submission order.

    At most ``depth`` items wait unstarted; ``submit`` blocks beyond that, which bounds memory
    and lets the slower stage set the pace.
    """

    def __init__(
        self, work: Callable[[T], R], depth: int = 1, name: str = "ordered-thread"
    ) -> None:
        self._work = work
        self._todo: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._done: queue.Queue[tuple[T, R]] = queue.Queue()
        self._error: BaseException | None = None
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> None:
        """Queue ``item``; raises the thread's exception if an earlier item failed."""
        self._raise_if_failed()
        self._todo.put(item)

    def completed(self) -> list[tuple[T, R]]:
        """(item, result) of every item finished since the last call, in submission order."""
        finished = []
        while True:
            try:
                finished.append(self._done.get_nowait())
            except queue.Empty:
                return finished

    def join(self) -> list[tuple[T, R]]:
        """Wait for every submitted item; returns ``completed()``, or raises the first failure."""
        self._stop()
        self._raise_if_failed()
        return self.completed()

    def cancel(self) -> None:
        """Skip whatever has not started, wait for the running item, stop. Never raises."""
        self._cancelled = True
        self._stop()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._todo.put(_STOP)
            self._thread.join()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (item := self._todo.get()) is not _STOP:
            if self._error is not None or self._cancelled:
                continue  # keep draining so a blocked submit() never waits forever
            try:
                self._done.put((cast(T, item), self._work(cast(T, item))))
            except BaseException as e:  # noqa: BLE001 - handed to the main thread as is
                self._error = e
