"""The headline first: on a fresh page, hold what follows the cards until they are painted, and
load the charts' code meanwhile.

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

What the hold would otherwise cost, the wait for Plotly's code once the charts arrive, the page
spends during it: right behind the cards comes a hidden script that starts loading that code
once a headline value is in the page and one frame has painted it. Loaded (and run, which is
most of its cost) while the hold elapses, the code is ready when the charts come: 2.3 s fully
rendered against 2.8 s, with the headline unchanged (bench/dashboard.py's page, alternating
loads). Started with the page instead, it held the headline back to 1.9 s; a ``modulepreload``
link, which only fetches and compiles, gained nothing, as running the code is the cost.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from pathlib import Path

import streamlit as st

FIRST_PAINT_SECONDS = 0.7
_PAINTED = "_moonwatch_first_paint_done"

# The container that holds the script, hidden so that it takes no room (style-only HTML goes
# to Streamlit's event container, which takes none either).
_LOADER_KEY = "moonwatch-chart-code"
_HIDE_LOADER = f"<style>.st-key-{_LOADER_KEY} {{ display: none; }}</style>"
# Streamlit's frontend build names each lazily loaded element's code "<Element>.<hash>.js".
_PLOTLY_CODE = re.compile(r"PlotlyChart\.[A-Za-z0-9_-]+\.js")
_STATIC_JS = Path(st.__file__).parent / "static" / "static" / "js"

log = logging.getLogger(__name__)


@functools.cache
def plotly_code_url() -> str | None:
    """The page-relative URL of the installed Streamlit's Plotly element code, or None if its
    build has no single such file (the page then loads it when the charts come, as before)."""
    names = [p.name for p in _STATIC_JS.glob("PlotlyChart.*.js") if _PLOTLY_CODE.fullmatch(p.name)]
    if len(names) != 1:
        log.warning(
            "Streamlit's Plotly element code not found as one file in %s (found %s): the "
            "charts' code will load when they arrive, after the headline's hold",
            _STATIC_JS,
            names,
        )
        return None
    # Relative, so it resolves under the server's base URL path as Streamlit's own code does,
    # to the same module (the browser runs a module once per URL).
    return f"./static/js/{names[0]}"


@functools.cache  # the same string on every run
def _loader_script(url: str) -> str:
    src = json.dumps(url)  # the URL matches _PLOTLY_CODE: no quote or markup can be in it
    return (
        "<script>(() => {"
        "const painted = () => document.querySelector('[data-testid=\"stMetricValue\"]');"
        f"const load = () => requestAnimationFrame(() => setTimeout(() => import({src})));"
        "if (painted()) { load(); return; }"
        "const watch = new MutationObserver(() => {"
        "if (painted()) { watch.disconnect(); load(); } });"
        "watch.observe(document.body, {childList: true, subtree: true});"
        "})();</script>"
    )


def load_chart_code_after_paint() -> None:
    """Right behind the headline cards: have the browser load Plotly's code once a headline
    value is painted. Sent on every run, so the elements after it keep their places; the
    browser runs the script once (an unchanged element is not redrawn, and a module loads once
    per page in any case)."""
    url = plotly_code_url()
    if url is None:
        return
    st.html(_HIDE_LOADER)
    with st.container(key=_LOADER_KEY):
        st.html(_loader_script(url), unsafe_allow_javascript=True)


def hold_for_first_paint(cards_sent: float) -> None:
    """On the session's first run, wait until FIRST_PAINT_SECONDS after ``cards_sent``
    (``time.monotonic()``) before the rest of the page is drawn."""
    if st.session_state.get(_PAINTED):
        return
    st.session_state[_PAINTED] = True
    time.sleep(max(0.0, cards_sent + FIRST_PAINT_SECONDS - time.monotonic()))
