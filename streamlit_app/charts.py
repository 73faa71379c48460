"""Plotly figures for the dashboard: pure functions from a DataFrame to a figure.

Every chart colours a coin through :func:`coin_colors`, so a coin keeps one colour on the price
chart, the percent-change charts, the donut and the bars. Time axes are UTC.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence

import pandas as pd
import plotly.graph_objects as go

from streamlit_app.transform import format_money

# Colours of well-known coins (close to their brands, spread apart so they stay distinct).
BRAND_COLORS: dict[str, str] = {
    "BTC": "#F7931A",
    "ETH": "#627EEA",
    "SOL": "#9945FF",
    "BNB": "#F3BA2F",
    "XRP": "#23B5E8",
    "ADA": "#2EC4B6",
    "USDT": "#26A17B",
    "USDC": "#A0C4FF",
    "DOGE": "#C2A633",
    "AVAX": "#E84142",
    "DOT": "#E6007A",
    "LINK": "#B8E986",
    "TRX": "#FF8C69",
    "TON": "#8D6E63",
}
# For every other coin: a slot chosen by a hash of the symbol (stable across runs and pages).
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


def coin_colors(symbols: Iterable[str]) -> dict[str, str]:
    """One colour per symbol: brand colours first, then hashed slots without clashes.

    Call it once per page with every symbol the page shows, so all charts agree.
    """
    wanted = sorted({str(s) for s in symbols if s is not None and str(s)})
    colors = {s: BRAND_COLORS[s] for s in wanted if s in BRAND_COLORS}
    used = set(colors.values())
    for symbol in (s for s in wanted if s not in colors):
        slot = zlib.crc32(symbol.encode()) % len(FALLBACK_COLORS)
        for step in range(len(FALLBACK_COLORS)):
            candidate = FALLBACK_COLORS[(slot + step) % len(FALLBACK_COLORS)]
            if candidate not in used:
                break
        else:  # more coins than colours: share, but deterministically
            candidate = FALLBACK_COLORS[slot]
        colors[symbol] = candidate
        used.add(candidate)
    return colors


def sparkline_svg(
    values: Sequence[object], color: str, *, title: str, width: int = 120, height: int = 28
) -> str:
    """A small inline SVG area line of ``values`` (oldest first), "" for fewer than two.

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
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'style="vertical-align:middle;margin-left:0.6em" role="img" aria-label="{title}">'
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


def _time_axis(fig: go.Figure, *, buttons: bool = True) -> None:
    fig.update_xaxes(
        type="date",
        title_text="UTC",
        showspikes=True,
        spikemode="across",
        spikethickness=1,
        rangeslider_visible=False,
        rangeselector={"buttons": RANGE_BUTTONS, "x": 0, "y": 1.02} if buttons else None,
        hoverformat="%Y-%m-%d %H:%M",
    )


def _show_last(fig: go.Figure, stamps: pd.Series, days: int) -> None:
    """Open on the last ``days`` when there is more history (the "all" button shows it)."""
    if stamps.empty:
        return
    first, last = stamps.min(), stamps.max()
    if last - first > pd.Timedelta(days=days):
        fig.update_xaxes(range=[last - pd.Timedelta(days=days), last])


def _base_layout(fig: go.Figure, title: str, *, height: int, uirevision: str) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left"},
        height=height,
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
        hovermode="x unified",
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.12},
        # Keep the reader's zoom and legend clicks across the page's automatic refresh.
        uirevision=uirevision,
    )
    return fig


def price_chart(
    hourly: pd.DataFrame, colors: dict[str, str], currency: str, *, height: int = 440
) -> go.Figure:
    """Hourly prices: candlesticks (OHLC) for one coin, close-price lines for several.

    ``hourly`` has the columns of ``marts.coin_price_hourly`` (money already converted).
    """
    fig = go.Figure()
    frame = hourly.sort_values("hour_at").assign(hour_at=lambda d: _utc_naive(d["hour_at"]))
    symbols = list(dict.fromkeys(frame["symbol"]))
    if len(symbols) == 1:
        symbol = symbols[0]
        color = colors.get(symbol, FALLBACK_COLORS[0])
        fig.add_trace(
            go.Candlestick(
                x=frame["hour_at"],
                open=frame["open_price"],
                high=frame["high_price"],
                low=frame["low_price"],
                close=frame["close_price"],
                name=symbol,
                increasing={"line": {"color": color}, "fillcolor": color},
                decreasing={"line": {"color": color}, "fillcolor": _rgba(color, 0.15)},
                showlegend=True,
            )
        )
        title = f"{symbol} price per hour ({currency}) · filled candle = up, hollow = down"
    else:
        for symbol in symbols:
            part = frame[frame["symbol"] == symbol]
            fig.add_trace(
                go.Scatter(
                    x=part["hour_at"],
                    y=part["close_price"],
                    mode="lines",
                    name=symbol,
                    line={"color": colors.get(symbol, FALLBACK_COLORS[0]), "width": 2},
                    hovertemplate=f"{symbol} %{{y:,.4~f}} {currency}<extra></extra>",
                )
            )
        title = f"Hourly close ({currency})"
        if len(symbols) > 1:
            fig.update_yaxes(type="log")
            title += " · log scale"
    _time_axis(fig)
    fig.update_xaxes(dtick=None, tickformat="%H:%M\n%b %d")
    fig.update_yaxes(title_text=currency, tickformat=",.4~f", fixedrange=False)
    return _base_layout(fig, title, height=height, uirevision=f"price-{'-'.join(symbols)}")


PERCENT_COLUMNS = {
    "percent_change_1h": "1h change",
    "percent_change_24h": "24h change",
    "percent_change_7d": "7d change",
    "percent_change_30d": "30d change",
}


def percent_change_chart(
    quotes: pd.DataFrame, column: str, colors: dict[str, str], *, height: int = 300
) -> go.Figure:
    """One percent-change field of ``marts.quotes_coins`` over time, a line per coin."""
    fig = go.Figure()
    frame = quotes.sort_values("last_updated_at").assign(
        last_updated_at=lambda d: _utc_naive(d["last_updated_at"])
    )
    for symbol in dict.fromkeys(frame["symbol"]):
        part = frame[frame["symbol"] == symbol]
        fig.add_trace(
            go.Scatter(
                x=part["last_updated_at"],
                y=part[column],
                mode="lines",
                name=symbol,
                line={"color": colors.get(symbol, FALLBACK_COLORS[0]), "width": 1.8},
                hovertemplate=f"{symbol} %{{y:+.2f}}%<extra></extra>",
            )
        )
    fig.add_hline(y=0, line_width=1, line_dash="dot", opacity=0.5)
    _time_axis(fig)
    _show_last(fig, frame["last_updated_at"], days=7)
    fig.update_yaxes(ticksuffix="%", zeroline=False)
    title = PERCENT_COLUMNS.get(column, column)
    return _base_layout(fig, title, height=height, uirevision=f"pct-{column}")


def market_cap_donut(
    top: pd.DataFrame, colors: dict[str, str], currency: str, *, height: int = 420
) -> go.Figure:
    """Top 10 by market cap (``marts.cap_top_10``, money converted) as a donut."""
    frame = top.sort_values("rank")
    labels = frame["symbol"].astype(str).tolist()
    texts = [format_money(v, currency, compact=True) for v in frame["market_cap"]]
    fig = go.Figure(
        go.Pie(
            labels=labels,
            values=frame["market_cap"],
            hole=0.55,
            sort=False,
            direction="clockwise",
            marker={"colors": [colors.get(s, FALLBACK_COLORS[0]) for s in labels]},
            customdata=list(zip(frame["name"].astype(str), texts, strict=True)),
            textinfo="label+percent",
            textposition="inside",
            hovertemplate="%{label} · %{customdata[0]}<br>market cap %{customdata[1]}"
            "<br>%{percent} of the top 10<extra></extra>",
        )
    )
    total = format_money(frame["market_cap"].sum(), currency, compact=True)
    fig.update_layout(
        title={"text": "Top 10 by market cap", "x": 0, "xanchor": "left"},
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        annotations=[{"text": f"{total}", "showarrow": False, "font": {"size": 16}}],
        legend={"orientation": "v"},
        uniformtext={"minsize": 10, "mode": "hide"},
        uirevision="cap-top-10",
    )
    return fig


def volume_bars(
    top: pd.DataFrame, colors: dict[str, str], currency: str, *, height: int = 420
) -> go.Figure:
    """Top 10 by 24h volume (``marts.vol_top_10``, money converted) as bars, biggest first."""
    frame = top.sort_values("rank")
    labels = frame["symbol"].astype(str).tolist()
    texts = [format_money(v, currency, compact=True) for v in frame["volume_24h"]]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=frame["volume_24h"],
            marker={"color": [colors.get(s, FALLBACK_COLORS[0]) for s in labels]},
            text=texts,
            textposition="outside",
            cliponaxis=False,
            customdata=frame["name"].astype(str),
            hovertemplate="%{x} · %{customdata}<br>24h volume %{text}<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": "Top 10 by 24h volume", "x": 0, "xanchor": "left"},
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        showlegend=False,
        uirevision="vol-top-10",
    )
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=labels)
    fig.update_yaxes(title_text=currency, exponentformat="B", showexponent="all")
    return fig
