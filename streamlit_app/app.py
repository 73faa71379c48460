"""Moonwatch dashboard: one page over the dbt marts, refreshing itself.

Run it with ``make up`` (or ``streamlit run streamlit_app/app.py`` from the project root with
MOONWATCH_DASHBOARD_DB_URL set). Layout, top to bottom: header (logo, freshness, simulated-data
badge) · coin and currency pickers · headline metrics per coin · hourly price chart · four
percent-change charts · top 10 by market cap (donut) and by 24h volume (bars) · pipeline health.
Data access lives in ``queries.py``, figures in ``charts.py``, currency conversion in
``currency.py``, numbers as text in ``formatting.py``, ages and stale verdicts in
``freshness.py``, CSV downloads in ``csv_export.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd
import streamlit as st

from moonwatch.errors import ConfigurationError
from moonwatch.settings import DASHBOARD_CURRENCIES
from streamlit_app import charts, csv_export, currency, freshness, markup, queries
from streamlit_app import formatting as fmt

LOGO = Path(__file__).resolve().parent / "static" / "moonwatch-logo.svg"
# Preselected coins by CoinMarketCap id (BTC, ETH, SOL): a coin that borrows a ticker is not.
DEFAULT_COIN_IDS = (1, 1027, 5426)
START_HINT = (
    "Start the pipeline with `make up`, then wait for the first producer run (about a minute: "
    "the quotes DAG produces, the loader writes `raw`, and the `crypto_transform` DAG's dbt "
    "build fills `marts`). `make status` shows what runs. This page looks again every "
    "{refresh} s by itself."
)
SOURCE_LABELS = {
    "crypto_quotes": ("Quotes", "Kafka topic → raw.crypto_quotes", 5 * 60),
    "crypto_listings": ("Listings", "top-10 snapshots → raw.crypto_listings", 60 * 60),
    "fx_rates": ("FX rates", "daily reference rates → raw.fx_rates", 2 * 86400),
}


SOURCE_NAMES = {"simulator": "simulated", "coinmarketcap": "CoinMarketCap"}


class Missing:
    """Why a mart's data is not on the page: the table is missing or has no rows."""

    def __init__(self, table: str, reason: str) -> None:
        self.table, self.reason = table, reason


def _load(
    table: str, fetch: Callable[[], pd.DataFrame], source: str | None = None
) -> pd.DataFrame | Missing:
    """``fetch()``'s rows, or why there are none; ``source`` names the data source the query
    kept to, so an empty answer says which source's rows are missing."""
    try:
        frame = fetch()
    except queries.MartMissingError:
        return Missing(table, f"`marts.{table}` does not exist yet")
    except (queries.MartAccessError, queries.MartOutdatedError) as e:
        return Missing(table, str(e))
    if frame.empty:
        kind = f" {SOURCE_NAMES.get(source, source)}" if source else ""
        return Missing(table, f"`marts.{table}` has no{kind} rows yet")
    return frame


def _escape(text: str) -> str:
    """Markdown would read two dollar signs as LaTeX."""
    return text.replace("$", "\\$")


def download(
    frame: pd.DataFrame, kind: str, labels: dict[int, str], cur: str, what: str, name: str
) -> None:
    """A button that downloads ``frame``'s ``kind`` figures (csv_export.CSV_COLUMNS) as CSV,
    money in the page's currency. The CSV is built only when someone clicks."""
    unit = re.sub(r"[^a-z0-9]", "", cur.lower()) or "money"
    st.download_button(
        f"{what} as CSV ({cur})",
        data=partial(csv_export.table_csv, frame, kind, labels),
        file_name=f"moonwatch-{name}-{unit}.csv",
        mime="text/csv",
        on_click="ignore",
        icon=":material/download:",
        key=f"download-{name}",
    )


# -- header --------------------------------------------------------------------------------


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


# -- sections ------------------------------------------------------------------------------


def pickers(coins: pd.DataFrame, stale: set[int]) -> tuple[list[int], str]:
    """``coins`` is :func:`queries.coins` (one row per coin id, by rank); ``stale`` the ids
    whose newest row is older than the stale threshold: marked, and never preselected."""
    options = [int(c) for c in coins["coin_id"]]
    # Plain dicts: the picker formats every one of thousands of options on every run.
    names = coins["symbol"].astype(str) + " · " + coins["name"].astype(str)
    labels = {
        coin_id: f"{name} · stale" if coin_id in stale else name
        for coin_id, name in zip(options, names, strict=True)
    }
    fresh = [c for c in options if c not in stale]
    default = [c for c in fresh if c in DEFAULT_COIN_IDS] or fresh[:3]
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    chosen = left.multiselect(
        "Coins",
        options,
        default=default,
        format_func=labels.__getitem__,
        key="coins",
        placeholder="Pick coins to follow",
    )
    picked = right.segmented_control(
        "Currency", list(DASHBOARD_CURRENCIES), default="USD", required=True, key="currency"
    )
    return [int(c) for c in chosen], picked or "USD"


def headline(
    selected: pd.DataFrame,
    hourly: pd.DataFrame | None,
    cur: str,
    colors: dict[int, str],
    labels: dict[int, str],
    stale_after: int,
) -> None:
    for row in selected.itertuples(index=False):
        coin_id = int(row.coin_id)
        label = labels.get(coin_id, str(row.symbol))
        md_label = markup.md_text(label)
        color = colors.get(coin_id, charts.FALLBACK_COLORS[0])
        with st.container(border=True):
            rank = f" · rank #{int(row.cmc_rank)}" if pd.notna(row.cmc_rank) else ""
            spark = ""
            if hourly is not None and not hourly.empty:
                # The last 24 hours by the clock, not the last 24 rows: missing hours stay gaps.
                day = freshness.last_hours(hourly[hourly["coin_id"] == coin_id])
                title = f"{label}: hourly closes of the last 24 h ({cur})"
                spark = markup.svg_image(
                    charts.sparkline_svg(
                        day.sort_values("hour_at")["close_price"].tolist(), color, title=title
                    ),
                    title,
                )
            st.html(markup.headline_html(color, label, str(row.name), rank, spark))
            fetched = f"fetched {freshness.format_age(row.stamped_at)}"
            if freshness.is_stale(row.stamped_at, stale_after):
                st.badge(
                    f"stale · {fetched}: no newer quote (older than {stale_after} s)",
                    icon=":material/history:",
                    color="orange",
                )
            else:
                st.caption(f"Quote {fetched}")
            cols = st.columns([1.3, 1, 1, 1, 1, 0.8, 1.1])
            cols[0].metric(f"{md_label} price", fmt.format_money(row.price, cur))
            for col, period, pct in (
                (cols[1], "1h", row.percent_change_1h),
                (cols[2], "24h", row.percent_change_24h),
            ):
                col.metric(
                    f"Change {period}",
                    fmt.format_signed_money(fmt.change_in_money(row.price, pct), cur),
                    delta=fmt.format_percent(pct) if pd.notna(pct) else None,
                )
            cols[3].metric("Market cap", fmt.format_money(row.market_cap, cur, compact=True))
            cols[4].metric(
                "Volume 24h",
                fmt.format_money(row.volume_24h, cur, compact=True),
                delta=fmt.format_percent(row.volume_change_24h)
                if pd.notna(row.volume_change_24h)
                else None,
                delta_color="off",
                delta_description="vs. day before" if pd.notna(row.volume_change_24h) else None,
            )
            cols[5].metric("Dominance", fmt.format_percent(row.market_cap_dominance, signed=False))
            unit = str(row.symbol)
            cols[6].metric(
                "Circulating supply",
                fmt.format_amount(row.circulating_supply, unit),
                help=f"Max supply: {markup.md_text(fmt.format_amount(row.max_supply, unit))}"
                if pd.notna(row.max_supply)
                else "No max supply (unlimited)",
            )
    download(selected, "quotes", labels, cur, "These quotes", "quotes")


def price_section(hourly: pd.DataFrame | Missing, colors, labels, cur: str) -> None:
    st.subheader("Price")
    if isinstance(hourly, Missing):
        st.info(
            f"No hourly prices for these coins: {hourly.reason}. dbt builds "
            "`marts.coin_price_hourly` from the loaded quotes on every transform run.",
            icon=":material/info:",
        )
        return
    st.plotly_chart(charts.price_chart(hourly, colors, labels, cur), config=charts.PLOTLY_CONFIG)
    download(hourly, "hourly", labels, cur, "Hourly prices", "hourly")


def percent_section(history: pd.DataFrame | Missing, colors, labels, cur: str) -> None:
    st.subheader("Percent change")
    if isinstance(history, Missing):
        st.info(f"No quote history for these coins: {history.reason}.", icon=":material/info:")
        return
    columns = list(charts.PERCENT_COLUMNS)
    for pair in (columns[:2], columns[2:]):
        for col, column in zip(st.columns(2), pair, strict=True):
            with col:
                st.plotly_chart(
                    charts.percent_change_chart(history, column, colors, labels),
                    config=charts.PLOTLY_CONFIG,
                )
    download(history, "history", labels, cur, "Percent changes and prices", "history")


def top_section(
    cap: pd.DataFrame | Missing, vol: pd.DataFrame | Missing, colors, labels, cur
) -> None:
    st.subheader("Market")
    left, right = st.columns(2)
    for col, frame, chart, what, name in (
        (left, cap, charts.market_cap_donut, "Top 10 by market cap", "cap-top-10"),
        (right, vol, charts.volume_bars, "Top 10 by 24h volume", "vol-top-10"),
    ):
        with col:
            if isinstance(frame, Missing):
                st.info(
                    f"{frame.reason}. The `crypto_listings_load` DAG snapshots the top coins "
                    "every few minutes; dbt turns them into this mart.",
                    icon=":material/info:",
                )
                continue
            st.plotly_chart(chart(frame, colors, labels, cur), config=charts.PLOTLY_CONFIG)
            snapshot = pd.Timestamp(frame["snapshot_at"].max()).tz_convert("UTC")
            st.caption(f"Snapshot {snapshot:%Y-%m-%d %H:%M} UTC ({freshness.format_age(snapshot)})")
            download(frame, "top", labels, cur, what, name)


# ECB reference rates come on working days: a Monday morning's newest rate is Friday's, and
# Easter's four-day weekend makes it four days old, so FX is stale only after that.
FX_STALE_DAYS = 4


def health_section(health: pd.DataFrame | Missing, fx_as_of: object | None) -> None:
    """``health`` is :func:`queries.pipeline_health` kept to the shown source. Where the mart
    judges each row itself (``status`` 'ok'/'warn'/'error', ``status_reason``) the page shows
    that verdict; else it judges by the age of the last load. ``fx_as_of`` is the newest
    rate's own date: FX freshness follows it, not the time the rates were last upserted (a
    re-fetch of an unchanged, week-old rate is not fresh)."""
    st.subheader("Pipeline health")
    if isinstance(health, Missing):
        st.info(f"{health.reason}.", icon=":material/info:")
        return
    order = {name: i for i, name in enumerate(SOURCE_LABELS)}
    rows = sorted(health.itertuples(index=False), key=lambda r: order.get(r.source_name, 99))
    for col, row in zip(st.columns(max(3, len(rows))), rows, strict=False):
        title, detail, stale_after = SOURCE_LABELS.get(
            str(row.source_name), (str(row.source_name), "", 3600)
        )
        age = freshness.age_seconds(row.last_loaded_at)
        value = f"loaded {freshness.format_age(row.last_loaded_at)}"
        stale_note = ":orange[stale: no load for longer than expected]"
        if row.source_name == "fx_rates":
            days = freshness.days_old(fx_as_of)
            age = None if days is None else days * 86400.0
            stale_after = FX_STALE_DAYS * 86400
            value = "no rates yet" if days is None else f"rates of {fx_as_of} ({days} d old)"
            stale_note = f":orange[stale: the newest rate is over {FX_STALE_DAYS} days old]"
        rejected = int(row.rejected_last_hour or 0) if pd.notna(row.rejected_last_hour) else 0
        loaded = int(row.rows_last_hour) if pd.notna(row.rows_last_hour) else 0
        stale = age is None or age > stale_after
        # The mart's own verdict where it has one; the page's age check can only add a warning.
        status = str(getattr(row, "status", "") or "")
        reason = getattr(row, "status_reason", None)
        ok = not stale and rejected == 0 and status in ("", "ok")
        with col:
            st.metric(
                f"{title} · `{row.source_name}`",
                value,
                delta=f"{loaded:,} rows last hour",
                delta_color="off",
                delta_arrow="off",
                icon=":material/check_circle:" if ok else ":material/warning:",
                border=True,
                help=detail,
            )
            if status in ("warn", "error") and isinstance(reason, str) and reason:
                color = "red" if status == "error" else "orange"
                st.caption(f":{color}[{markup.md_text(reason)}]")
            elif rejected:
                st.caption(f":red[{rejected:,} rejected in the last hour]")
            elif stale:
                st.caption(stale_note)
            else:
                st.caption(":green[no rejected messages in the last hour]")


def reconciliation_section(runs: pd.DataFrame | Missing) -> None:
    """The newest reconciliation run (crypto_reconcile DAG): the numbers are checked against
    the source, and a mismatch or a lost quote is loud."""
    if isinstance(runs, Missing):
        st.caption(
            "Reconciliation: no run yet; the `crypto_reconcile` DAG asks the source again every "
            "hour and compares with the marts."
        )
        return
    run = runs.iloc[0]
    counts = (
        f"{int(run.matched)} of {int(run.samples)} coins matched the source"
        f" · {int(run.superseded)} not comparable (a version the producer never fetched)"
    )
    when = f"Reconciliation of {freshness.format_age(run.sampled_at)}"
    if run.status == "error":
        coins = markup.md_text(run.mismatched_coins) if run.mismatched_coins else "none"
        st.error(
            f"{when}: {int(run.mismatched)} mismatched (coins: {coins}), {int(run.not_loaded)} "
            f"never reached the marts; {counts}. See the `crypto_reconcile` run in Airflow.",
            icon=":material/error:",
        )
    elif run.status == "pending":
        st.caption(f"{when}: {int(run.pending)} still waiting for their quote; {counts}.")
    else:
        st.caption(f":green[{when}: {counts}.]")


def credits_section(budget: pd.DataFrame | Missing) -> None:
    """One line: how often the producer calls CoinMarketCap now (paced to the month's
    budget) and the month's credits used and left."""
    if isinstance(budget, Missing):
        st.caption("Credits: no producer run has recorded its pace yet.")
        return
    row = budget.iloc[0]

    def every(minutes: object) -> str:
        if pd.isna(minutes):
            return "paused until the 1st (UTC)"
        return "every minute" if int(minutes) == 1 else f"every {int(minutes)} minutes"

    cadence = (
        f"quotes {every(row.quotes_every_minutes)} · listings {every(row.listings_every_minutes)}"
    )
    if row.is_simulated:
        st.caption(
            f"Credits (simulator, free): {cadence} · {int(row.credits_used):,} counted this month"
        )
    else:
        st.caption(
            f"CoinMarketCap credits: {cadence} · {int(row.credits_used):,} of "
            f"{int(row.credits_budget):,} used this month, {int(row.credits_left):,} left"
        )


def alerts_section(alerts: pd.DataFrame | Missing) -> None:
    """Recent alerts (crypto_alerts, rules in dbt_project/alerts.yml): what fired, whether it
    still holds, and whether its notification went out."""
    st.subheader("Alerts")
    if isinstance(alerts, Missing):
        st.caption(
            "No alerts yet. Rules live in `dbt_project/alerts.yml` or the Airflow Variable "
            "`moonwatch_alert_rules`; see README, Alerts."
        )
        return
    table = pd.DataFrame(
        {
            "status": alerts["status"],
            "alert": alerts["title"].str.replace("Moonwatch alert: ", "", regex=False),
            "started (UTC)": alerts["opened_at"],
            "resolved (UTC)": alerts["resolved_at"],
            "sent": alerts["open_sent_at"].notna().map({True: "yes", False: "not sent"}),
            "why not sent": alerts["delivery_error"],
        }
    )
    st.dataframe(table, hide_index=True, use_container_width=True)


# -- the page ------------------------------------------------------------------------------


@st.fragment(run_every=queries.REFRESH_SECONDS)
def dashboard() -> None:
    try:
        db = queries.database_key()
        status = queries.mart_status(db)
        summary = _load("latest_quotes", lambda: queries.sources(db))
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
        render(db, status, summary)
    except queries.DatabaseUnavailableError as e:
        st.error(
            f"**Lost the warehouse while drawing the page.** {_escape(str(e))}",
            icon=":material/cloud_off:",
        )


def render(db: str, status: pd.DataFrame, summary: pd.DataFrame | Missing) -> None:
    coins = summary
    source = None
    if not isinstance(summary, Missing):
        # One source on the page: the one the pipeline stamped most recently.
        source = freshness.active_source(summary)
        coins = _load("latest_quotes", lambda: queries.coins(db, source=source))
    if isinstance(coins, Missing) or source is None:
        header(None)
        empty_state(status)
        return
    header(summary[summary["source"] == source].iloc[0])
    other_sources_note(summary[summary["source"] != source])

    stale_after = queries.stale_after_seconds()
    stale = {
        int(c)
        for c, t in zip(coins["coin_id"], coins["stamped_at"], strict=True)
        if freshness.is_stale(t, stale_after)
    }
    # The currency the pipeline quotes in now: that of the most recently fetched coin.
    home = str(coins.sort_values("stamped_at", na_position="first")["quote_currency"].iloc[-1])
    current = dict(zip(coins["coin_id"].astype(int), coins["quote_currency"], strict=True))

    coin_ids, requested = pickers(coins, stale)
    loaded_rates = _load("fx_rates_daily", lambda: queries.fx_rates(db))
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
        _load("cap_top_10", lambda: queries.top_10(db, "cap_top_10", source=source), source),
        currency.TOP10_MONEY_COLUMNS,
        "snapshot_at",
    )
    vol = to_cur(
        _load("vol_top_10", lambda: queries.top_10(db, "vol_top_10", source=source), source),
        currency.TOP10_MONEY_COLUMNS,
        "snapshot_at",
    )
    ids = tuple(sorted(coin_ids))
    # The full quotes of the picked coins only (the picker's list has just id, symbol, name).
    latest = _load("latest_quotes", lambda: queries.latest_quotes(db, ids, source=source))
    if isinstance(latest, Missing):  # the picked coins left the mart since the picker's read
        latest = pd.DataFrame(columns=["coin_id", "symbol", "name"])
    # Colours and names for every coin the page shows (picked and top 10), so charts agree.
    shown = [latest[["coin_id", "symbol", "name"]]]
    shown += [f[["coin_id", "symbol", "name"]] for f in (cap, vol) if not isinstance(f, Missing)]
    everyone = pd.concat(shown, ignore_index=True)
    colors = charts.coin_colors(everyone["coin_id"])
    labels = fmt.coin_labels(everyone)

    if not coin_ids:
        st.info("Pick at least one coin above to see its numbers and charts.")
    else:
        hourly = _load(
            "coin_price_hourly", lambda: queries.price_hourly(db, ids, source=source), source
        )
        if not isinstance(hourly, Missing):
            hourly = currency.prefer_currency(hourly, ["coin_id", "hour_at"], current)
            hourly = to_cur(hourly, currency.HOURLY_MONEY_COLUMNS, "hour_at")
        present = set(latest["coin_id"])
        picked = [c for c in coin_ids if c in present]
        selected = latest.set_index("coin_id").loc[picked].reset_index()
        selected = to_cur(selected, currency.QUOTE_MONEY_COLUMNS, "stamped_at")
        headline(
            selected,
            None if isinstance(hourly, Missing) else hourly,
            cur,
            colors,
            labels,
            stale_after,
        )
        price_section(hourly, colors, labels, cur)
        history = _load(
            "quotes_coins", lambda: queries.quote_history(db, ids, source=source), source
        )
        if not isinstance(history, Missing):
            history = currency.prefer_currency(history, ["coin_id", "last_updated_at"], current)
            history = to_cur(history, ("price",), "last_updated_at")
        percent_section(history, colors, labels, cur)

    top_section(cap, vol, colors, labels, cur)
    health = _load("pipeline_health", lambda: queries.pipeline_health(db))
    if not isinstance(health, Missing):
        health = queries.for_source(health, source)
    health_section(health, currency.newest_fx_date(rates))
    reconciliation_section(
        _load("reconciliation_runs", lambda: queries.reconciliation(db, source=source), source)
    )
    credits_section(
        _load("credit_budget", lambda: queries.credit_budget(db, source=source), source)
    )
    alerts_section(_load("alert_events", lambda: queries.recent_alerts(db, source=source), source))
    st.caption(
        f"Reads schema `marts` as `{queries.describe_target()}` · money in {cur} · "
        "times in UTC · drag to zoom, double-click to reset · "
        f"[dbt docs: every mart and column explained](<{queries.dbt_docs_url()}>)"
    )


# Smaller metric values, so seven metrics per coin fit one row on a laptop screen.
PAGE_CSS = """
<style>
[data-testid="stMetricValue"] { font-size: 1.65rem; }
[data-testid="stMetricLabel"] p { font-size: 0.85rem; }
</style>
"""


def main() -> None:
    st.set_page_config(
        page_title="Moonwatch",
        page_icon=str(LOGO),
        layout="wide",
        initial_sidebar_state="collapsed",
    )
    st.html(PAGE_CSS)
    dashboard()


main()
