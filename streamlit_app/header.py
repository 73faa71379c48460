"""The top of the page: its setup (title, icon, wide layout, style), logo and title, the
freshness and simulated-data badges, the note on other sources, and what to do while the marts
are still empty."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from streamlit_app import freshness, markup, queries
from streamlit_app.formatting import SOURCE_NAMES

LOGO = Path(__file__).resolve().parent / "static" / "moonwatch-logo.svg"
START_HINT = (
    "Start the pipeline with `make up`, then wait for the first producer run (about a minute: "
    "the quotes DAG produces, the loader writes `raw`, and the `crypto_transform` DAG's dbt "
    "build fills `marts`). `make status` shows what runs. This page looks again every "
    "{refresh} s by itself."
)


# Smaller metric values, so seven metrics per coin fit one row on a laptop screen.
PAGE_CSS = """
<style>
[data-testid="stMetricValue"] { font-size: 1.65rem; }
[data-testid="stMetricLabel"] p { font-size: 0.85rem; }
</style>
"""


def page_setup() -> None:
    """The page's title, icon and wide layout, and its style: the script's first call."""
    st.set_page_config(
        page_title="Moonwatch",
        page_icon=str(LOGO),
        layout="wide",
        initial_sidebar_state="collapsed",
    )
    st.html(PAGE_CSS)


def header(active: pd.Series | None) -> None:
    """``active`` is the :func:`queries.sources` row of the source the page shows. Its age is
    the newest time the pipeline itself stamped (capped at now), so a stalled pipeline looks
    stalled whatever a source's ``last_updated`` says."""
    logo, title, status = st.columns([1, 5, 4], vertical_alignment="center")
    logo.image(str(LOGO), width=76)
    with title:
        st.markdown("# Moonwatch")
        st.caption("Crypto market data · CoinMarketCap → Kafka → PostgreSQL → dbt → here")
    if active is None:
        return
    simulated = bool(active["is_simulated"]) or active["source"] == "simulator"
    with status:
        stamped = active["stamped_at"]
        badges = st.container(horizontal=True, gap="small")
        with badges:
            st.badge(
                f"updated {freshness.format_age(stamped)}",
                icon=":material/schedule:",
                color=freshness.badge_color(freshness.age_seconds(stamped)),
            )
            if simulated:
                st.badge("SIMULATED DATA", icon=":material/science:", color="orange")
            else:
                st.badge("live · CoinMarketCap", icon=":material/bolt:", color="blue")
        if pd.notna(stamped):
            stamp = pd.Timestamp(stamped).tz_convert("UTC")
            st.caption(
                f"Newest quote fetched {stamp:%Y-%m-%d %H:%M:%S} UTC · "
                f"refreshes every {queries.REFRESH_SECONDS} s"
            )
        if simulated:
            st.caption(
                ":orange[Prices come from Moonwatch's offline market simulator (no "
                "`CMC_API_KEY` set), not from CoinMarketCap.]"
            )


def other_sources_note(others: pd.DataFrame) -> None:
    """One line per source the warehouse holds besides the one shown (after a switch)."""
    for row in others.itertuples(index=False):
        kind = SOURCE_NAMES.get(str(row.source), f"'{markup.md_text(row.source)}'")
        st.caption(
            f"The warehouse also holds {int(row.coins):,} coins of {kind} data from before "
            "the switch; not shown."
        )


def empty_state(status: pd.DataFrame) -> None:
    problems = []
    for row in status.itertuples(index=False):
        if not row.exists:
            problems.append(f"- `marts.{row.table}`: not built yet")
        elif not row.has_rows:
            problems.append(f"- `marts.{row.table}`: no rows yet")
    st.warning(
        "**No market data yet.** The dashboard reads the dbt marts, and the page needs "
        "`marts.latest_quotes` with at least one quote.",
        icon=":material/hourglass_empty:",
    )
    st.markdown("**What is missing**\n\n" + "\n".join(problems))
    st.markdown("**How to get data**\n\n" + START_HINT.format(refresh=queries.REFRESH_SECONDS))
