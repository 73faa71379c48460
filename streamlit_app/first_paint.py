"""The headline first: on a fresh page, hold what follows the cards until they are painted.

A fresh page's browser paints a batch of new elements only once the code of every element type
in the batch has loaded, and Streamlit fetches that code lazily, per type, when the first
element of the type arrives. Sent right behind the headline cards, the charts (Plotly's code,
4.7 MB) and the alerts table (Arrow's, 1.2 MB) held the cards' first paint back until both had
loaded: 2-4 s in headless Chromium against ~1.4 s without them (bench/dashboard.py). So on a
session's first run nothing after the cards is sent until ``FIRST_PAINT_SECONDS`` after them,
time the browser uses to load the cards' own code (metric, HTML, download button) and paint
them; the reads and the building of the charts count towards it. Later runs of the session (the
refresh, a new pick) find every element's code loaded and do not wait.

The hold is the price of the headline: with it at 0 or 0.35 s, the headline of a month of
quotes took 2.9 and 2.1 s (median of 8 warm loads) against 1.6-1.7 s at 0.7 s, while the full
render gained 0.2-0.5 s. ``make bench`` measures a layout floor with this hold in it.
"""

from __future__ import annotations

import time

import streamlit as st

FIRST_PAINT_SECONDS = 0.7
_PAINTED = "_moonwatch_first_paint_done"


def hold_for_first_paint(cards_sent: float) -> None:
    """On the session's first run, wait until FIRST_PAINT_SECONDS after ``cards_sent``
    (``time.monotonic()``) before the rest of the page is drawn."""
    if st.session_state.get(_PAINTED):
        return
    st.session_state[_PAINTED] = True
    time.sleep(max(0.0, cards_sent + FIRST_PAINT_SECONDS - time.monotonic()))
