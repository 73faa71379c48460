"""The market part of the page: coin and currency pickers, a headline card per coin, the
hourly price chart, the percent-change charts and the two top-10 charts, each with its CSV
download. Money arrives converted to the page's currency (``cur``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from moonwatch.settings import DASHBOARD_CURRENCIES
from streamlit_app import charts, csv_export, freshness, markup
from streamlit_app import formatting as fmt
from streamlit_app.loading import Missing

# Preselected coins by CoinMarketCap id (BTC, ETH, SOL): a coin that borrows a ticker is not.
DEFAULT_COIN_IDS = (1, 1027, 5426)


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


# How many picked coins the closed picker's button names before "+N more".
PICKER_NAMES_SHOWN = 3


def picker_label(chosen: list[int], labels: dict[int, str]) -> str:
    """The closed coin picker's button: the picked coins, as Markdown-safe text."""
    names = [labels[c] for c in chosen if c in labels]
    if not names:
        return "Coins: none picked"
    shown = ", ".join(markup.md_text(n) for n in names[:PICKER_NAMES_SHOWN])
    more = len(names) - PICKER_NAMES_SHOWN
    return f"Coins: {shown}" + (f" +{more} more" if more > 0 else "")


def pickers(coins: pd.DataFrame, stale: set[int]) -> tuple[list[int], str]:
    """``coins`` is :func:`queries.coins` (one row per coin id, by rank); ``stale`` the ids
    whose newest row is older than the stale threshold: marked, and preselected only when
    every coin is stale."""
    options = [int(c) for c in coins["coin_id"]]
    # Plain dicts: the picker formats every one of thousands of options on every run.
    names = coins["symbol"].astype(str) + " · " + coins["name"].astype(str)
    labels = {
        coin_id: f"{name} · stale" if coin_id in stale else name
        for coin_id, name in zip(options, names, strict=True)
    }
    fresh = [c for c in options if c not in stale]
    # When every coin is stale the pipeline has stopped: the defaults' last prices, each
    # marked stale, tell more than an empty page does.
    default = (
        [c for c in fresh if c in DEFAULT_COIN_IDS]
        or fresh[:3]
        or [c for c in options if c in DEFAULT_COIN_IDS]
        or options[:3]
    )
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    # The list of every tracked coin sits in a popover, drawn only when someone opens it: drawn
    # inline, 5,000 options held the headline prices back by ~1.5 s in Chromium. The widget's
    # state holds this run's picks before the widget is called, so the button can name them.
    with left.popover(
        picker_label(st.session_state.get("coins", default), labels),
        icon=":material/filter_list:",
        help="Pick the coins to follow",
    ):
        chosen = st.multiselect(
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


class Card:
    """A headline card's title line, drawn first without its sparkline; :func:`sparklines`
    draws it again with one once the hourly prices are read."""

    def __init__(self, slot, coin_id: int, color: str, label: str, name: str, rank: str) -> None:
        self.slot, self.coin_id, self.color = slot, coin_id, color
        self.label, self.name, self.rank = label, name, rank

    def draw(self, spark: str = "") -> None:
        self.slot.html(markup.headline_html(self.color, self.label, self.name, self.rank, spark))


def headline(
    selected: pd.DataFrame,
    cur: str,
    colors: dict[int, str],
    labels: dict[int, str],
    stale_after: int,
) -> list[Card]:
    """A card per picked coin with its figures, from the latest quotes alone: the page draws
    these before it reads anything for the charts, so the prices never wait for a chart's
    query. Returns the cards, for :func:`sparklines`."""
    cards = []
    for row in selected.itertuples(index=False):
        coin_id = int(row.coin_id)
        label = labels.get(coin_id, str(row.symbol))
        md_label = markup.md_text(label)
        color = colors.get(coin_id, charts.FALLBACK_COLORS[0])
        with st.container(border=True):
            rank = f" · rank #{int(row.cmc_rank)}" if pd.notna(row.cmc_rank) else ""
            card = Card(st.empty(), coin_id, color, label, str(row.name), rank)
            card.draw()
            cards.append(card)
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
    return cards


def sparklines(cards: list[Card], hourly: pd.DataFrame | None, cur: str) -> None:
    """Each card's title line again, now with the coin's last 24 hourly closes."""
    if hourly is None or hourly.empty:
        return
    for card in cards:
        # The last 24 hours by the clock, not the last 24 rows: missing hours stay gaps.
        day = freshness.last_hours(hourly[hourly["coin_id"] == card.coin_id])
        title = f"{card.label}: hourly closes of the last 24 h ({cur})"
        spark = charts.sparkline_svg(
            day.sort_values("hour_at")["close_price"].tolist(), card.color, title=title
        )
        if spark:
            card.draw(markup.svg_image(spark, title))


@dataclass(frozen=True)
class Figures:
    """The page's charts, built apart from drawing them: the page builds them while its
    headline is being painted (``first_paint``) and draws them once it is. None (or no
    percent charts) where the data is missing."""

    price: go.Figure | None
    percent: tuple[go.Figure, ...]
    cap: go.Figure | None
    vol: go.Figure | None


def build_figures(
    hourly: pd.DataFrame | Missing | None,
    history: pd.DataFrame | Missing | None,
    cap: pd.DataFrame | Missing,
    vol: pd.DataFrame | Missing,
    colors: dict[int, str],
    labels: dict[int, str],
    cur: str,
) -> Figures:
    def have(frame: object) -> bool:
        return isinstance(frame, pd.DataFrame)

    return Figures(
        price=charts.price_chart(hourly, colors, labels, cur) if have(hourly) else None,
        percent=tuple(
            charts.percent_change_chart(history, column, colors, labels)
            for column in charts.PERCENT_COLUMNS
        )
        if have(history)
        else (),
        cap=charts.market_cap_donut(cap, colors, labels, cur) if have(cap) else None,
        vol=charts.volume_bars(vol, colors, labels, cur) if have(vol) else None,
    )


def price_section(
    hourly: pd.DataFrame | Missing, figure: go.Figure | None, labels, cur: str
) -> None:
    st.subheader("Price")
    if isinstance(hourly, Missing):
        st.info(
            f"No hourly prices for these coins: {hourly.reason}. dbt builds "
            "`marts.coin_price_hourly` from the loaded quotes on every transform run.",
            icon=":material/info:",
        )
        return
    st.plotly_chart(figure, config=charts.PLOTLY_CONFIG)
    download(hourly, "hourly", labels, cur, "Hourly prices", "hourly")


def percent_section(
    history: pd.DataFrame | Missing, figures: tuple[go.Figure, ...], labels, cur: str
) -> None:
    st.subheader("Percent change")
    if isinstance(history, Missing):
        st.info(f"No quote history for these coins: {history.reason}.", icon=":material/info:")
        return
    for pair in (figures[:2], figures[2:]):
        for col, figure in zip(st.columns(2), pair, strict=True):
            with col:
                st.plotly_chart(figure, config=charts.PLOTLY_CONFIG)
    download(history, "history", labels, cur, "Percent changes and prices", "history")


def top_section(
    cap: pd.DataFrame | Missing, vol: pd.DataFrame | Missing, figures: Figures, labels, cur
) -> None:
    st.subheader("Market")
    left, right = st.columns(2)
    for col, frame, figure, what, name in (
        (left, cap, figures.cap, "Top 10 by market cap", "cap-top-10"),
        (right, vol, figures.vol, "Top 10 by 24h volume", "vol-top-10"),
    ):
        with col:
            if isinstance(frame, Missing):
                st.info(
                    f"{frame.reason}. The `crypto_listings_load` DAG snapshots the top coins "
                    "every few minutes; dbt turns them into this mart.",
                    icon=":material/info:",
                )
                continue
            st.plotly_chart(figure, config=charts.PLOTLY_CONFIG)
            snapshot = pd.Timestamp(frame["snapshot_at"].max()).tz_convert("UTC")
            st.caption(f"Snapshot {snapshot:%Y-%m-%d %H:%M} UTC ({freshness.format_age(snapshot)})")
            download(frame, "top", labels, cur, what, name)
