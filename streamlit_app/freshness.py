"""How old the page's data is: ages from the times the pipeline stamped, the stale verdicts,
the header badge's colour, and which data source is current.

No Streamlit and no database here, so every function tests without a running app.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd


def age_seconds(moment: object, now: datetime | None = None) -> float | None:
    """Seconds from ``moment`` (a naive time is UTC) to ``now``; None for no time."""
    if moment is None or moment is pd.NaT:
        return None
    stamp = pd.Timestamp(moment)
    if pd.isna(stamp):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return (pd.Timestamp(now or datetime.now(UTC)) - stamp).total_seconds()


def format_age(moment: object, now: datetime | None = None) -> str:
    """``40 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago``; ``never`` for no time."""
    age = age_seconds(moment, now)
    if age is None:
        return "never"
    seconds = max(0, int(age))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min ago"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} d ago"


def is_stale(stamped_at: object, stale_after_seconds: float, now: datetime | None = None) -> bool:
    """Whether a coin's newest row is too old to pass for current. ``stamped_at`` is the time
    the pipeline itself stamped on that row (fetched or loaded), never the source's
    ``last_updated``; a coin without one is stale."""
    age = age_seconds(stamped_at, now)
    return age is None or age > stale_after_seconds


def stale_coins(
    coins: pd.DataFrame, stale_after_seconds: float, now: datetime | None = None
) -> set[int]:
    """The ``coin_id`` of every row of ``coins`` that :func:`is_stale` judges stale by its
    ``stamped_at``, in one pass over the column: the page asks it of every tracked coin."""
    stamps = pd.to_datetime(coins["stamped_at"], utc=True)
    ages = (pd.Timestamp(now or datetime.now(UTC)) - stamps).dt.total_seconds()
    stale = ages.isna() | (ages > stale_after_seconds)
    return {int(c) for c in coins.loc[stale.to_numpy(), "coin_id"]}


def badge_color(age: float | None) -> str:
    """The header badge's colour for the age of the newest pipeline-stamped time: green up to
    3 min (a load or two late), orange up to an hour, red after that or with no time."""
    if age is None or age > 3600:
        return "red"
    return "green" if age < 180 else "orange"


def active_source(sources: pd.DataFrame) -> str | None:
    """The source the page shows: the one whose newest pipeline-stamped time in
    ``marts.latest_quotes`` is the newest (``sources`` is :func:`queries.sources`)."""
    known = sources.dropna(subset=["stamped_at"])
    if known.empty:
        return None if sources.empty else str(sources["source"].iloc[0])
    return str(known.sort_values(["stamped_at", "source"]).iloc[-1]["source"])


def last_hours(hourly: pd.DataFrame, hours: int = 24, now: datetime | None = None) -> pd.DataFrame:
    """The rows of ``hourly`` whose ``hour_at`` lies in the last ``hours`` hours, the current
    hour included: a day of closes, however many hours are missing from it."""
    if hourly.empty:
        return hourly
    current = pd.Timestamp(now or datetime.now(UTC)).floor("h")
    stamps = pd.to_datetime(hourly["hour_at"], utc=True)
    start = current - pd.Timedelta(hours=hours - 1)
    return hourly[(stamps >= start) & (stamps <= current)]


def days_old(day: object, now: datetime | None = None) -> int | None:
    """Whole days from ``day`` (a date) to today (UTC); None for no date."""
    if day is None or day is pd.NaT:
        return None
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return (today - pd.Timestamp(day).date()).days
