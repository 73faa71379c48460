"""The page freezes its server's start-up heap once, so full garbage collections stop walking
the ~170,000 objects every import leaves behind (streamlit_app/heap.py). What that buys in
time is measured in bench/dashboard.py, not asserted here."""

from __future__ import annotations

import gc

import pytest
from streamlit.testing.v1 import AppTest

from streamlit_app import heap
from tests.dashboard.conftest import APP_PATH


@pytest.fixture
def thawed(monkeypatch):
    """A process that has not frozen yet; unfrozen again after the test, so the rest of the
    suite's objects stay collectable."""
    gc.unfreeze()
    monkeypatch.setattr(heap, "_frozen", False)
    yield
    gc.unfreeze()


def test_freeze_moves_the_start_up_heap_out_of_the_collectors_walk(thawed):
    walked_before = len(gc.get_objects())
    assert gc.get_freeze_count() == 0

    assert heap.freeze_startup_heap() is True

    # Everything that existed is now in the permanent generation, which collections skip.
    assert gc.get_freeze_count() >= walked_before // 2
    assert len(gc.get_objects()) < walked_before // 10


def test_freeze_happens_once_per_process(thawed):
    heap.freeze_startup_heap()
    frozen = gc.get_freeze_count()
    later = [[i] for i in range(1000)]  # a page run's objects: they must stay collectable

    assert heap.freeze_startup_heap() is False
    # Not an exact count: frozen objects freed since (other threads of the suite) leave it.
    assert gc.get_freeze_count() < frozen + len(later)
    assert gc.is_tracked(later[0])
    assert any(obj is later for obj in gc.get_objects())


@pytest.mark.integration
def test_the_page_freezes_the_heap_on_its_first_run(thawed, small_marts, dashboard_env):
    at = AppTest.from_file(str(APP_PATH), default_timeout=60).run()

    assert not at.exception
    assert heap._frozen is True
    assert gc.get_freeze_count() > 0
