"""Moonwatch dashboard: one page over the dbt marts, refreshing itself.

Run it with ``make up`` (or ``streamlit run streamlit_app/app.py`` from the project root with
MOONWATCH_DASHBOARD_DB_URL set). Layout, top to bottom: header (logo, freshness, simulated-data
badge) · coin and currency pickers · headline metrics per coin · hourly price chart · four
percent-change charts · top 10 by market cap (donut) and by 24h volume (bars) · pipeline health.
This file reads the data and lays the page out; the parts of the page live in ``header.py``,
``market.py`` (pickers, headline cards, price, percent-change and top-10 charts) and
``pipeline_status.py`` (health, reconciliation, credits, alerts). Data access lives in
``queries.py`` (``loading.py`` turns a missing mart into a note), figures in ``charts.py``,
currency conversion in ``currency.py``, numbers as text in ``formatting.py``, ages and stale
verdicts in ``freshness.py``, CSV downloads in ``csv_export.py``, escaping in ``markup.py``,
the headline painted before the rest (and the charts' code loaded meanwhile) in
``first_paint.py``, the server's start-up heap kept out of the garbage collector's way in
``heap.py``.
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from moonwatch.errors import ConfigurationError
from streamlit_app import charts, currency, freshness, heap, queries
from streamlit_app import formatting as fmt
from streamlit_app.first_paint import hold_for_first_paint, load_chart_code_after_paint
from streamlit_app.header import empty_state, header, other_sources_note, page_setup
from streamlit_app.loading import Missing, load
from streamlit_app.market import (
    build_figures,
    headline,
    percent_section,
    pickers,
    price_section,
    sparklines,
    top_section,
)
from streamlit_app.pipeline_status import (
    alerts_section,
    credits_section,
    health_section,
    reconciliation_section,
)

# Once per server process, after the imports above (the first run's): see heap.py.
heap.freeze_startup_heap()


def _escape(text: str) -> str:
    """Markdown would read two dollar signs as LaTeX."""
    return text.replace("$", "\\$")


# -- the page ------------------------------------------------------------------------------


@st.fragment(run_every=queries.REFRESH_SECONDS)
def dashboard() -> None:
    try:
        db = queries.database_key()
        summary = load("latest_quotes", lambda: queries.sources(db))
    except ConfigurationError as e:
        header(None)
        st.error(f"**The dashboard has no database to read.** {e}", icon=":material/settings:")
        return
    except queries.DashboardError as e:
        header(None)
        st.error(
            f"**Cannot read the warehouse.** {_escape(str(e))}\n\n"
            f"The dashboard reads the URL in `{queries.DB_URL_ENV}` (read-only role). For the "
            "local stack, `make status` says whether PostgreSQL runs and "
            '`eval "$(make -s env)"` exports the right URL.',
            icon=":material/cloud_off:",
        )
        return

    try:
        render(db, summary)
    except queries.DatabaseUnavailableError as e:
        st.error(
            f"**Lost the warehouse while drawing the page.** {_escape(str(e))}",
            icon=":material/cloud_off:",
        )


def render(db: str, summary: pd.DataFrame | Missing) -> None:
    coins = summary
    source = None
    if not isinstance(summary, Missing):
        # One source on the page: the one the pipeline stamped most recently.
        source = freshness.active_source(summary)
        coins = load("latest_quotes", lambda: queries.coins(db, source=source))
    if isinstance(coins, Missing) or source is None:
        header(None)
        # Which marts exist and have rows: read only for this note, never before the headline
        # (one probe per mart table).
        empty_state(queries.mart_status(db))
        return
    header(summary[summary["source"] == source].iloc[0])
    other_sources_note(summary[summary["source"] != source])

    stale_after = queries.stale_after_seconds()
    stale = freshness.stale_coins(coins, stale_after)
    # The currency the pipeline quotes in now: that of the most recently fetched coin.
    home = str(coins.sort_values("stamped_at", na_position="first")["quote_currency"].iloc[-1])
    current = dict(zip(coins["coin_id"].astype(int), coins["quote_currency"], strict=True))

    coin_ids, requested = pickers(coins, stale)
    loaded_rates = load("fx_rates_daily", lambda: queries.fx_rates(db))
    rates = currency.fx_history(None if isinstance(loaded_rates, Missing) else loaded_rates)
    fx = currency.resolve_fx(rates, home, requested)
    cur = fx.currency
    if fx.problem:
        st.warning(fx.problem, icon=":material/currency_exchange:")
    elif fx.rate is not None:
        st.caption(
            f"1 {home} = {fx.rate:,.4f} {cur} (rate of {fx.as_of}); each earlier point converts "
            "at its own day's rate; percent changes are not converted."
        )

    def to_cur(frame: pd.DataFrame | Missing, columns: tuple[str, ...], at: str):
        if isinstance(frame, Missing):
            return frame
        return currency.convert_rows(frame, columns, rates, cur, at=at)

    cap = to_cur(
        load("cap_top_10", lambda: queries.top_10(db, "cap_top_10", source=source), source),
        currency.TOP10_MONEY_COLUMNS,
        "snapshot_at",
    )
    vol = to_cur(
        load("vol_top_10", lambda: queries.top_10(db, "vol_top_10", source=source), source),
        currency.TOP10_MONEY_COLUMNS,
        "snapshot_at",
    )
    ids = tuple(sorted(coin_ids))
    # The full quotes of the picked coins only (the picker's list has just id, symbol, name).
    latest = load("latest_quotes", lambda: queries.latest_quotes(db, ids, source=source))
    if isinstance(latest, Missing):  # the picked coins left the mart since the picker's read
        latest = pd.DataFrame(columns=["coin_id", "symbol", "name"])
    # Colours and names for every coin the page shows (picked and top 10), so charts agree.
    shown = [latest[["coin_id", "symbol", "name"]]]
    shown += [f[["coin_id", "symbol", "name"]] for f in (cap, vol) if not isinstance(f, Missing)]
    everyone = pd.concat(shown, ignore_index=True)
    colors = charts.coin_colors(everyone["coin_id"])
    labels = fmt.coin_labels(everyone)

    hourly: pd.DataFrame | Missing | None = None
    history: pd.DataFrame | Missing | None = None
    cards_sent: float | None = None
    if not coin_ids:
        st.info("Pick at least one coin above to see its numbers and charts.")
    else:
        present = set(latest["coin_id"])
        picked = [c for c in coin_ids if c in present]
        selected = latest.set_index("coin_id").loc[picked].reset_index()
        selected = to_cur(selected, currency.QUOTE_MONEY_COLUMNS, "stamped_at")
        # The headline first, from the latest quotes alone: Streamlit sends each element as
        # the script reaches it, so the prices are on screen while the rest is read.
        cards = headline(selected, cur, colors, labels, stale_after)
        cards_sent = time.monotonic()
        load_chart_code_after_paint()
        hourly = load(
            "coin_price_hourly", lambda: queries.price_hourly(db, ids, source=source), source
        )
        if not isinstance(hourly, Missing):
            hourly = currency.prefer_currency(hourly, ["coin_id", "hour_at"], current)
            hourly = to_cur(hourly, currency.HOURLY_MONEY_COLUMNS, "hour_at")
        sparklines(cards, None if isinstance(hourly, Missing) else hourly, cur)
        history = load(
            "quotes_coins", lambda: queries.quote_history(db, ids, source=source), source
        )
        if not isinstance(history, Missing):
            history = currency.prefer_currency(history, ["coin_id", "last_updated_at"], current)
            history = to_cur(history, ("price",), "last_updated_at")

    # Everything below the cards is read before any of it is drawn (see hold_for_first_paint).
    health = load("pipeline_health", lambda: queries.pipeline_health(db))
    if not isinstance(health, Missing):
        health = queries.for_source(health, source)
    reconciliation = load(
        "reconciliation_runs", lambda: queries.reconciliation(db, source=source), source
    )
    credits = load("credit_budget", lambda: queries.credit_budget(db, source=source), source)
    alerts = load("alert_events", lambda: queries.recent_alerts(db, source=source), source)
    # The charts too: built while the headline is painted, drawn after.
    figures = build_figures(hourly, history, cap, vol, colors, labels, cur)
    if cards_sent is not None:
        hold_for_first_paint(cards_sent)

    if hourly is not None and history is not None:
        price_section(hourly, figures.price, labels, cur)
        percent_section(history, figures.percent, labels, cur)
    top_section(cap, vol, figures, labels, cur)
    health_section(health, currency.newest_fx_date(rates))
    reconciliation_section(reconciliation)
    credits_section(credits)
    alerts_section(alerts)
    st.caption(
        f"Reads schema `marts` as `{queries.describe_target()}` · money in {cur} · "
        "times in UTC · drag to zoom, double-click to reset · "
        f"[dbt docs: every mart and column explained](<{queries.dbt_docs_url()}>)"
    )


def main() -> None:
    page_setup()
    dashboard()


main()
