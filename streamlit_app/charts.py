"""Plotly figures for the dashboard: pure functions from a DataFrame to a figure.

Coins are keyed by ``coin_id`` everywhere (several coins share a ticker): every chart groups by
id, colours a coin through :func:`coin_colors` and names it by the page's label for that id
(:func:`streamlit_app.formatting.coin_labels`), so a coin keeps one colour and one name on the
price chart, the percent-change charts, the donut and the bars. Names reach Plotly escaped
(:func:`streamlit_app.markup.plotly_text`). Time axes are UTC.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence

import pandas as pd
import plotly.graph_objects as go

from streamlit_app.formatting import coin_labels, format_money
from streamlit_app.markup import css_color, html_text, plotly_text

# Colours of well-known coins (close to their brands, spread apart so they stay distinct), by
# CoinMarketCap id: a coin that merely borrows a famous ticker does not get its colour.
BRAND_COLORS: dict[int, str] = {
    1: "#F7931A",  # BTC
    1027: "#627EEA",  # ETH
    5426: "#9945FF",  # SOL
    1839: "#F3BA2F",  # BNB
    52: "#23B5E8",  # XRP
    2010: "#2EC4B6",  # ADA
    825: "#26A17B",  # USDT
    3408: "#A0C4FF",  # USDC
    74: "#C2A633",  # DOGE
    5805: "#E84142",  # AVAX
    6636: "#E6007A",  # DOT
    1975: "#B8E986",  # LINK
    1958: "#FF8C69",  # TRX
    11419: "#8D6E63",  # TON
}
# For every other coin: a slot chosen by a hash of its id (stable across runs and pages).
FALLBACK_COLORS: tuple[str, ...] = (
    "#FF9F1C",
    "#4ECDC4",
    "#C77DFF",
    "#F15BB5",
    "#00BBF9",
    "#FEE440",
    "#00F5D4",
    "#FB5607",
    "#8AC926",
    "#1982C4",
    "#FF595E",
    "#FFCA3A",
    "#6A4C93",
    "#90BE6D",
    "#F9844A",
    "#43AA8B",
    "#B5838D",
    "#9D4EDD",
)

RANGE_BUTTONS = [
    {"count": 24, "label": "24h", "step": "hour", "stepmode": "backward"},
    {"count": 7, "label": "7d", "step": "day", "stepmode": "backward"},
    {"count": 30, "label": "30d", "step": "day", "stepmode": "backward"},
    {"label": "all", "step": "all"},
]
PLOTLY_CONFIG = {"displaylogo": False, "scrollZoom": False}


def coin_colors(coin_ids: Iterable[object]) -> dict[int, str]:
    """One colour per coin id: brand colours first, then hashed slots without clashes.

    Call it once per page with every coin the page shows, so all charts agree.
    """
    wanted = sorted({int(c) for c in coin_ids if c is not None and not pd.isna(c)})
    colors = {c: BRAND_COLORS[c] for c in wanted if c in BRAND_COLORS}
    used = set(colors.values())
    for coin_id in (c for c in wanted if c not in colors):
        slot = zlib.crc32(str(coin_id).encode()) % len(FALLBACK_COLORS)
        for step in range(len(FALLBACK_COLORS)):
            candidate = FALLBACK_COLORS[(slot + step) % len(FALLBACK_COLORS)]
            if candidate not in used:
                break
        else:  # more coins than colours: share, but deterministically
            candidate = FALLBACK_COLORS[slot]
        colors[coin_id] = candidate
        used.add(candidate)
    return colors


def _color(colors: dict[int, str], coin_id: object) -> str:
    return colors.get(int(coin_id), FALLBACK_COLORS[0])  # type: ignore[call-overload]


def _label(labels: dict[int, str], coin_id: object) -> str:
    """The escaped Plotly name of a coin (its id when the page has no label for it)."""
    return plotly_text(labels.get(int(coin_id), f"#{coin_id}"))  # type: ignore[call-overload]


def sparkline_svg(
    values: Sequence[object], color: str, *, title: str, width: int = 120, height: int = 28
) -> str:
    """A small inline SVG area line of ``values`` (oldest first), "" for fewer than two.
    ``title`` is plain text (escaped here); ``color`` must be ``#RRGGBB``.

    Drawn by the browser from a few hundred bytes of markup: a chart library per headline
    (Streamlit's metric sparklines load Vega, ~0.8 MB of script) costs the page far more.
    """
    points = []
    for value in values:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            points.append(number)
    if len(points) < 2:
        return ""
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    step = width / (len(points) - 1)
    line = " ".join(
        f"{i * step:.1f},{height - 1 - (v - low) / span * (height - 2):.1f}"
        for i, v in enumerate(points)
    )
    area = f"0,{height} {line} {width},{height}"
    color, title = css_color(color), html_text(title)  # the title names the coin: untrusted
    return (
        # xmlns: the page shows the SVG as an image (markup.svg_image), which needs it.
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        f'<polygon points="{area}" fill="{_rgba(color, 0.18)}" stroke="none"/>'
        f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="1.5"/></svg>'
    )


def _utc_naive(series: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(series, utc=True)
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None)


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _time_axis(**more: object) -> dict:
    """A UTC time x axis with spikes and the range buttons; ``more`` adds to it.

    Figures are built from whole layout dicts: Plotly validates a dict once, where each
    ``update_xaxes`` call walks its property tree again (most of a chart's build time)."""
    return {
        "type": "date",
        "title": {"text": "UTC"},
        "showspikes": True,
        "spikemode": "across",
        "spikethickness": 1,
        "rangeslider": {"visible": False},
        "hoverformat": "%Y-%m-%d %H:%M",
        "rangeselector": {"buttons": RANGE_BUTTONS, "x": 0, "y": 1.02},
    } | more


def _last_days(stamps: pd.Series, days: int) -> dict:
    """The x range that opens on the last ``days`` when there is more history (the "all"
    button shows it), as x-axis properties; none when the history is shorter."""
    if stamps.empty:
        return {}
    first, last = stamps.min(), stamps.max()
    if last - first > pd.Timedelta(days=days):
        return {"range": [last - pd.Timedelta(days=days), last]}
    return {}


def _base_layout(title: str, *, height: int, uirevision: str, **more: object) -> dict:
    return {
        "title": {"text": title, "x": 0, "xanchor": "left"},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 70, "b": 10},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.12},
        # Keep the reader's zoom and legend clicks across the page's automatic refresh.
        "uirevision": uirevision,
    } | more


def price_chart(
    hourly: pd.DataFrame,
    colors: dict[int, str],
    labels: dict[int, str],
    currency: str,
    *,
    height: int = 440,
) -> go.Figure:
    """Hourly prices: candlesticks (OHLC) for one coin, close-price lines for several.

    ``hourly`` has the columns of ``marts.coin_price_hourly`` (money already converted); a
    coin is a ``coin_id``, named by ``labels``.
    """
    traces = []
    frame = hourly.sort_values("hour_at").assign(hour_at=lambda d: _utc_naive(d["hour_at"]))
    coin_ids = [int(c) for c in dict.fromkeys(frame["coin_id"])]
    unit = plotly_text(currency)
    if len(coin_ids) == 1:
        coin_id = coin_ids[0]
        color = _color(colors, coin_id)
        traces.append(
            go.Candlestick(
                x=frame["hour_at"],
                open=frame["open_price"],
                high=frame["high_price"],
                low=frame["low_price"],
                close=frame["close_price"],
                name=_label(labels, coin_id),
                increasing={"line": {"color": color}, "fillcolor": color},
                decreasing={"line": {"color": color}, "fillcolor": _rgba(color, 0.15)},
                showlegend=True,
            )
        )
        title = (
            f"{_label(labels, coin_id)} price per hour ({unit}) · filled candle = up, hollow = down"
        )
    else:
        for coin_id in coin_ids:
            part = frame[frame["coin_id"] == coin_id]
            traces.append(
                go.Scatter(
                    x=part["hour_at"],
                    y=part["close_price"],
                    mode="lines",
                    name=_label(labels, coin_id),
                    line={"color": _color(colors, coin_id), "width": 2},
                    # The name through Plotly's own variable: never text inside a template.
                    hovertemplate=f"%{{fullData.name}} %{{y:,.6~r}} {unit}<extra></extra>",
                )
            )
        title = f"Hourly close ({unit})"
    # Significant digits, never exponents or zeros: a price of 0.000001234 stays readable.
    yaxis = {
        "title": {"text": unit},
        "tickformat": ",.4~r",
        "hoverformat": ",.6~r",
        "fixedrange": False,
    }
    if len(coin_ids) > 1:
        yaxis["type"] = "log"
        title += " · log scale"
    revision = "-".join(map(str, coin_ids))
    layout = _base_layout(
        title,
        height=height,
        uirevision=f"price-{revision}",
        xaxis=_time_axis(tickformat="%H:%M\n%b %d"),
        yaxis=yaxis,
    )
    return go.Figure(traces, layout)


PERCENT_COLUMNS = {
    "percent_change_1h": "1h change",
    "percent_change_24h": "24h change",
    "percent_change_7d": "7d change",
    "percent_change_30d": "30d change",
}


def percent_change_chart(
    quotes: pd.DataFrame,
    column: str,
    colors: dict[int, str],
    labels: dict[int, str],
    *,
    height: int = 300,
) -> go.Figure:
    """One percent-change field of ``marts.quotes_coins`` over time, a line per coin id."""
    frame = quotes.sort_values("last_updated_at").assign(
        last_updated_at=lambda d: _utc_naive(d["last_updated_at"])
    )
    traces = []
    for coin_id in dict.fromkeys(frame["coin_id"]):
        part = frame[frame["coin_id"] == coin_id]
        traces.append(
            go.Scatter(
                x=part["last_updated_at"],
                y=part[column],
                mode="lines",
                name=_label(labels, coin_id),
                line={"color": _color(colors, coin_id), "width": 1.8},
                hovertemplate="%{fullData.name} %{y:+.2f}%<extra></extra>",
            )
        )
    # The zero line across the whole width, whatever the reader zooms to.
    zero = {
        "type": "line",
        "xref": "x domain",
        "x0": 0,
        "x1": 1,
        "yref": "y",
        "y0": 0,
        "y1": 0,
        "line": {"width": 1, "dash": "dot"},
        "opacity": 0.5,
    }
    layout = _base_layout(
        PERCENT_COLUMNS.get(column, column),
        height=height,
        uirevision=f"pct-{column}",
        shapes=[zero],
        xaxis=_time_axis(**_last_days(frame["last_updated_at"], days=7)),
        yaxis={"ticksuffix": "%", "zeroline": False},
    )
    return go.Figure(traces, layout)


def _top_labels(frame: pd.DataFrame, labels: dict[int, str]) -> list[str]:
    """Escaped names of the top-10 coins, from the page's ``labels`` (distinct per id), else
    labels of these ten alone: a pie or a category axis merges two coins that share a label
    into one slice or bar."""
    own = coin_labels(frame)
    return [plotly_text(labels.get(int(c), own[int(c)])) for c in frame["coin_id"]]


def market_cap_donut(
    top: pd.DataFrame,
    colors: dict[int, str],
    labels: dict[int, str],
    currency: str,
    *,
    height: int = 420,
) -> go.Figure:
    """Top 10 by market cap (``marts.cap_top_10``, money converted) as a donut."""
    frame = top.sort_values("rank")
    names = _top_labels(frame, labels)
    texts = [format_money(v, currency, compact=True) for v in frame["market_cap"]]
    pie = go.Pie(
        labels=names,
        values=frame["market_cap"],
        hole=0.55,
        sort=False,
        direction="clockwise",
        marker={"colors": [_color(colors, c) for c in frame["coin_id"]]},
        customdata=list(
            zip([plotly_text(n) for n in frame["name"]], map(plotly_text, texts), strict=True)
        ),
        textinfo="label+percent",
        textposition="inside",
        hovertemplate="%{label} · %{customdata[0]}<br>market cap %{customdata[1]}"
        "<br>%{percent} of the top 10<extra></extra>",
    )
    total = plotly_text(format_money(frame["market_cap"].sum(), currency, compact=True))
    layout = {
        "title": {"text": "Top 10 by market cap", "x": 0, "xanchor": "left"},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
        "annotations": [{"text": total, "showarrow": False, "font": {"size": 16}}],
        "legend": {"orientation": "v"},
        "uniformtext": {"minsize": 10, "mode": "hide"},
        "uirevision": "cap-top-10",
    }
    return go.Figure(pie, layout)


def volume_bars(
    top: pd.DataFrame,
    colors: dict[int, str],
    labels: dict[int, str],
    currency: str,
    *,
    height: int = 420,
) -> go.Figure:
    """Top 10 by 24h volume (``marts.vol_top_10``, money converted) as bars, biggest first."""
    frame = top.sort_values("rank")
    names = _top_labels(frame, labels)
    texts = [plotly_text(format_money(v, currency, compact=True)) for v in frame["volume_24h"]]
    bars = go.Bar(
        x=names,
        y=frame["volume_24h"],
        marker={"color": [_color(colors, c) for c in frame["coin_id"]]},
        text=texts,
        textposition="outside",
        cliponaxis=False,
        customdata=[plotly_text(n) for n in frame["name"]],
        hovertemplate="%{x} · %{customdata}<br>24h volume %{text}<extra></extra>",
    )
    layout = {
        "title": {"text": "Top 10 by 24h volume", "x": 0, "xanchor": "left"},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
        "showlegend": False,
        "uirevision": "vol-top-10",
        "xaxis": {"type": "category", "categoryorder": "array", "categoryarray": names},
        "yaxis": {
            "title": {"text": plotly_text(currency)},
            "exponentformat": "B",
            "showexponent": "all",
        },
    }
    return go.Figure(bars, layout)
