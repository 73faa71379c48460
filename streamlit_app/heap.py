"""Keep the page's garbage-collection pauses short: freeze the server's start-up heap once.

Python's full (generation 2) collection walks every container object the process holds. A
dashboard server holds ~170,000 of them once pandas, Plotly and SQLAlchemy are imported, nearly
all of them for its whole life (modules, classes, functions), and a page run allocates enough
(a query's ~4,500 rows become row tuples, then a frame) to set off a full collection every few
runs. Measured on this page's price-history query (~45 ms to query and convert): one run in
ten also held a full collection of ~100 ms, which made the query's whole p95 tail.
``gc.freeze()`` moves what exists at that moment into a permanent generation the collector no
longer walks; the same collections then take under a millisecond. Objects created later are
collected as before, and frozen ones are still freed by reference counting when nothing holds
them; only reference cycles among the frozen start-up objects are never reclaimed, which is
why the heap is collected first.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_frozen = False


def freeze_startup_heap() -> bool:
    """Collect, then freeze every object the process holds now; only the first call in a
    process does anything (the page calls this on every run, right after its imports).
    Returns whether this call froze."""
    global _frozen
    with _lock:
        if _frozen:
            return False
        gc.collect()
        gc.freeze()
        _frozen = True
        return True
