"""Moonwatch dashboard: one page over the dbt marts, refreshing itself.

Run it with ``make up`` (or ``streamlit run streamlit_app/app.py`` from the project root with
MOONWATCH_DASHBOARD_DB_URL set). Layout, top to bottom: header (logo, freshness, simulated-data
badge) · coin and currency pickers · headline metrics per coin · hourly price chart · four
percent-change charts · top 10 by market cap (donut) and by 24h volume (bars) · pipeline health.
Data access lives in ``queries.py``, figures in ``charts.py``, conversion and formatting in
``transform.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

# `streamlit run` puts only this folder on sys.path; the page imports `streamlit_app.*` and the
# `moonwatch` package (plugins/), wherever it is started from.
_ROOT = Path(__file__).resolve().parents[1]
for _path in (_ROOT, _ROOT / "plugins"):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from moonwatch.errors import ConfigurationError  # noqa: E402
from moonwatch.settings import DASHBOARD_CURRENCIES  # noqa: E402
from streamlit_app import charts, queries  # noqa: E402
from streamlit_app import transform as tf  # noqa: E402

LOGO = Path(__file__).resolve().parent / "static" / "moonwatch-logo.svg"
DEFAULT_COINS = ("BTC", "ETH", "SOL")
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


class Missing:
    """Why a mart's data is not on the page: the table is missing or has no rows."""

    def __init__(self, table: str, reason: str) -> None:
        self.table, self.reason = table, reason


def _load(table: str, fetch: Callable[[], pd.DataFrame]) -> pd.DataFrame | Missing:
    try:
        frame = fetch()
    except queries.MartMissingError:
        return Missing(table, f"`marts.{table}` does not exist yet")
    except queries.MartAccessError as e:
        return Missing(table, str(e))
    if frame.empty:
        return Missing(table, f"`marts.{table}` has no rows yet")
    return frame


def _escape(text: str) -> str:
    """Markdown would read two dollar signs as LaTeX."""
    return text.replace("$", "\\$")


# -- header --------------------------------------------------------------------------------


def header(fresh: pd.DataFrame | None) -> None:
    """``fresh`` is :func:`queries.freshness`: the newest quote and load, simulated or not."""
    logo, title, status = st.columns([1, 5, 4], vertical_alignment="center")
    logo.image(str(LOGO), width=76)
    with title:
        st.markdown("# Moonwatch")
        st.caption("Crypto market data · CoinMarketCap → Kafka → PostgreSQL → dbt → here")
    if fresh is None:
        return
    simulated = bool(fresh["is_simulated"].fillna(False).any())
    with status:
        newest = fresh["last_updated_at"].max()
        loaded = fresh["loaded_at"].max()
        age = tf.age_seconds(newest)
        color = "green" if age is not None and age < 180 else "orange"
        if age is None or age > 3600:
            color = "red"
        badges = st.container(horizontal=True, gap="small")
        with badges:
            st.badge(f"updated {tf.format_age(newest)}", icon=":material/schedule:", color=color)
            if simulated:
                st.badge("SIMULATED DATA", icon=":material/science:", color="orange")
            else:
                st.badge("live · CoinMarketCap", icon=":material/bolt:", color="blue")
        stamp = pd.Timestamp(newest).tz_convert("UTC")
        st.caption(
            f"Newest quote {stamp:%Y-%m-%d %H:%M:%S} UTC · loaded {tf.format_age(loaded)} · "
            f"refreshes every {queries.REFRESH_SECONDS} s"
        )
        if simulated:
            st.caption(
                ":orange[Prices come from Moonwatch's offline market simulator (no "
                "`CMC_API_KEY` set), not from CoinMarketCap.]"
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


def pickers(coins: pd.DataFrame) -> tuple[list[int], str]:
    """``coins`` is :func:`queries.coins` in one quote currency, by rank."""
    coins = coins.drop_duplicates("coin_id")
    options = [int(c) for c in coins["coin_id"]]
    # Plain dicts: the picker formats every one of thousands of options on every run.
    names = coins["symbol"].astype(str) + " · " + coins["name"].astype(str)
    labels = dict(zip(options, names, strict=True))
    wanted = set(coins.loc[coins["symbol"].isin(DEFAULT_COINS), "coin_id"].astype(int))
    default = [c for c in options if c in wanted] or options[:3]
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    chosen = left.multiselect(
        "Coins",
        options,
        default=default,
        format_func=labels.__getitem__,
        key="coins",
        placeholder="Pick coins to follow",
    )
    currency = right.segmented_control(
        "Currency", list(DASHBOARD_CURRENCIES), default="USD", required=True, key="currency"
    )
    return [int(c) for c in chosen], currency or "USD"


def headline(selected: pd.DataFrame, hourly: pd.DataFrame | None, cur: str, colors) -> None:
    for row in selected.itertuples(index=False):
        sym = str(row.symbol)
        color = colors.get(sym, charts.FALLBACK_COLORS[0])
        with st.container(border=True):
            rank = f" · rank #{int(row.cmc_rank)}" if pd.notna(row.cmc_rank) else ""
            spark = ""
            if hourly is not None and not hourly.empty:
                closes = hourly[hourly["coin_id"] == row.coin_id].sort_values("hour_at")
                spark = charts.sparkline_svg(
                    closes["close_price"].tail(24).tolist(),
                    color,
                    title=f"{sym}: the last 24 hourly closes ({cur})",
                )
            st.markdown(
                f'<span style="color:{color};font-size:1.3em">●</span> '
                f"**{sym}** {row.name}{rank}{spark}",
                unsafe_allow_html=True,
            )
            cols = st.columns([1.3, 1, 1, 1, 1, 0.8, 1.1])
            cols[0].metric(f"{sym} price", tf.format_money(row.price, cur))
            for col, label, pct in (
                (cols[1], "1h", row.percent_change_1h),
                (cols[2], "24h", row.percent_change_24h),
            ):
                col.metric(
                    f"Change {label}",
                    tf.format_signed_money(tf.change_in_money(row.price, pct), cur),
                    delta=tf.format_percent(pct) if pd.notna(pct) else None,
                )
            cols[3].metric("Market cap", tf.format_money(row.market_cap, cur, compact=True))
            cols[4].metric(
                "Volume 24h",
                tf.format_money(row.volume_24h, cur, compact=True),
                delta=tf.format_percent(row.volume_change_24h)
                if pd.notna(row.volume_change_24h)
                else None,
                delta_color="off",
                delta_description="vs. day before" if pd.notna(row.volume_change_24h) else None,
            )
            cols[5].metric("Dominance", tf.format_percent(row.market_cap_dominance, signed=False))
            cols[6].metric(
                "Circulating supply",
                tf.format_amount(row.circulating_supply, sym),
                help=f"Max supply: {tf.format_amount(row.max_supply, sym)}"
                if pd.notna(row.max_supply)
                else "No max supply (unlimited)",
            )


def price_section(hourly: pd.DataFrame | Missing, colors, cur: str) -> None:
    st.subheader("Price")
    if isinstance(hourly, Missing):
        st.info(
            f"No hourly prices for these coins: {hourly.reason}. dbt builds "
            "`marts.coin_price_hourly` from the loaded quotes on every transform run.",
            icon=":material/info:",
        )
        return
    st.plotly_chart(charts.price_chart(hourly, colors, cur), config=charts.PLOTLY_CONFIG)


def percent_section(history: pd.DataFrame | Missing, colors) -> None:
    st.subheader("Percent change")
    if isinstance(history, Missing):
        st.info(f"No quote history for these coins: {history.reason}.", icon=":material/info:")
        return
    columns = list(charts.PERCENT_COLUMNS)
    for pair in (columns[:2], columns[2:]):
        for col, column in zip(st.columns(2), pair, strict=True):
            with col:
                st.plotly_chart(
                    charts.percent_change_chart(history, column, colors),
                    config=charts.PLOTLY_CONFIG,
                )


def top_section(cap: pd.DataFrame | Missing, vol: pd.DataFrame | Missing, colors, cur) -> None:
    st.subheader("Market")
    left, right = st.columns(2)
    for col, frame, chart in (
        (left, cap, charts.market_cap_donut),
        (right, vol, charts.volume_bars),
    ):
        with col:
            if isinstance(frame, Missing):
                st.info(
                    f"{frame.reason}. The `crypto_listings_load` DAG snapshots the top coins "
                    "every few minutes; dbt turns them into this mart.",
                    icon=":material/info:",
                )
                continue
            st.plotly_chart(chart(frame, colors, cur), config=charts.PLOTLY_CONFIG)
            snapshot = pd.Timestamp(frame["snapshot_at"].max()).tz_convert("UTC")
            st.caption(f"Snapshot {snapshot:%Y-%m-%d %H:%M} UTC ({tf.format_age(snapshot)})")


def health_section(health: pd.DataFrame | Missing) -> None:
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
        age = tf.age_seconds(row.last_loaded_at)
        rejected = int(row.rejected_last_hour or 0) if pd.notna(row.rejected_last_hour) else 0
        ok = age is not None and age <= stale_after and rejected == 0
        loaded = int(row.rows_last_hour) if pd.notna(row.rows_last_hour) else 0
        with col:
            st.metric(
                f"{title} · `{row.source_name}`",
                f"loaded {tf.format_age(row.last_loaded_at)}",
                delta=f"{loaded:,} rows last hour",
                delta_color="off",
                delta_arrow="off",
                icon=":material/check_circle:" if ok else ":material/warning:",
                border=True,
                help=detail,
            )
            if rejected:
                st.caption(f":red[{rejected:,} rejected in the last hour]")
            elif age is not None and age > stale_after:
                st.caption(":orange[stale: no load for longer than expected]")
            else:
                st.caption(":green[no rejected messages in the last hour]")


# -- the page ------------------------------------------------------------------------------


@st.fragment(run_every=queries.REFRESH_SECONDS)
def dashboard() -> None:
    try:
        db = queries.database_key()
        status = queries.mart_status(db)
        coins = _load("latest_quotes", lambda: queries.coins(db))
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
        render(db, status, coins)
    except queries.DatabaseUnavailableError as e:
        st.error(
            f"**Lost the warehouse while drawing the page.** {_escape(str(e))}",
            icon=":material/cloud_off:",
        )


def render(db: str, status: pd.DataFrame, coins: pd.DataFrame | Missing) -> None:
    if isinstance(coins, Missing):
        header(None)
        empty_state(status)
        return
    header(queries.freshness(db))
    base = "USD" if (coins["quote_currency"] == "USD").any() else coins["quote_currency"].iloc[0]
    coins = coins[coins["quote_currency"] == base]

    coin_ids, requested = pickers(coins)
    rates = _load("fx_rates_daily", lambda: queries.fx_rates(db))
    fx = tf.resolve_fx(None if isinstance(rates, Missing) else rates, base, requested)
    cur = fx.currency
    if fx.problem:
        st.warning(fx.problem, icon=":material/currency_exchange:")
    elif cur != base:
        as_of = f" (rate of {fx.as_of})" if fx.as_of is not None else ""
        st.caption(f"1 {base} = {fx.factor:,.4f} {cur}{as_of}; percent changes are not converted.")

    cap = _load("cap_top_10", lambda: queries.top_10(db, "cap_top_10"))
    vol = _load("vol_top_10", lambda: queries.top_10(db, "vol_top_10"))
    ids = tuple(sorted(coin_ids))
    # The full quotes of the picked coins only (the picker's list has just id, symbol, name).
    latest = _load("latest_quotes", lambda: queries.latest_quotes(db, ids, base))
    if isinstance(latest, Missing):  # the picked coins left the mart since the picker's read
        latest = pd.DataFrame(columns=["coin_id", "symbol"])
    # Colours for the coins the page shows (picked and top 10), so every chart agrees.
    symbols = set(latest["symbol"])
    for frame in (cap, vol):
        if not isinstance(frame, Missing):
            symbols |= set(frame["symbol"])
    colors = charts.coin_colors(symbols)

    if not coin_ids:
        st.info("Pick at least one coin above to see its numbers and charts.")
    else:
        hourly = _load("coin_price_hourly", lambda: queries.price_hourly(db, ids, base))
        if not isinstance(hourly, Missing):
            hourly = tf.convert(hourly, tf.HOURLY_MONEY_COLUMNS, fx.factor)
        present = set(latest["coin_id"])
        picked = [c for c in coin_ids if c in present]
        selected = latest.set_index("coin_id").loc[picked].reset_index()
        selected = tf.convert(selected, tf.QUOTE_MONEY_COLUMNS, fx.factor)
        headline(selected, None if isinstance(hourly, Missing) else hourly, cur, colors)
        price_section(hourly, colors, cur)
        history = _load("quotes_coins", lambda: queries.quote_history(db, ids, base))
        percent_section(history, colors)

    if not isinstance(cap, Missing):
        cap = tf.convert(cap, tf.TOP10_MONEY_COLUMNS, fx.factor)
    if not isinstance(vol, Missing):
        vol = tf.convert(vol, tf.TOP10_MONEY_COLUMNS, fx.factor)
    top_section(cap, vol, colors, cur)
    health_section(_load("pipeline_health", lambda: queries.pipeline_health(db)))
    st.caption(
        f"Reads schema `marts` as `{queries.describe_target()}` · money in {cur} · "
        "times in UTC · drag to zoom, double-click to reset"
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
