"""Unit tests of the dashboard's ages, stale verdicts and current source (no services)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from streamlit_app import freshness


def test_format_age():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert freshness.format_age(now - timedelta(seconds=40), now) == "40 s ago"
    assert freshness.format_age(now - timedelta(minutes=5), now) == "5 min ago"
    assert freshness.format_age(now - timedelta(hours=3), now) == "3 h ago"
    assert freshness.format_age(now - timedelta(days=4), now) == "4 d ago"
    assert freshness.format_age(None, now) == "never"


def test_is_stale_follows_the_pipeline_stamp_and_the_threshold():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert not freshness.is_stale(now - timedelta(seconds=299), 300, now)
    assert freshness.is_stale(now - timedelta(seconds=301), 300, now)
    assert freshness.is_stale(None, 300, now)
    assert freshness.is_stale(pd.NaT, 300, now)


def test_stale_coins_gives_each_coin_the_verdict_of_is_stale():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    stamps = [
        now - timedelta(seconds=299),
        now - timedelta(seconds=300),  # at the threshold: still current
        now - timedelta(seconds=301),
        now + timedelta(hours=2),  # a clock ahead: not stale, as is_stale says
        now - timedelta(days=4000),
        None,
    ]
    expected = {i for i, t in enumerate(stamps) if freshness.is_stale(t, 300, now)}
    assert expected == {2, 4, 5}
    # As the database returns it (UTC-aware, NaT for none) and as plain objects, naive = UTC.
    aware = pd.DataFrame({"coin_id": range(6), "stamped_at": pd.to_datetime(stamps, utc=True)})
    naive = [None if t is None else t.replace(tzinfo=None) for t in stamps]
    plain = pd.DataFrame({"coin_id": range(6), "stamped_at": pd.Series(naive, dtype=object)})
    assert freshness.stale_coins(aware, 300, now) == expected
    assert freshness.stale_coins(plain, 300, now) == expected
    assert freshness.stale_coins(aware.iloc[:0], 300, now) == set()


def test_badge_color_of_a_stalled_pipeline_is_never_green():
    assert freshness.badge_color(40) == "green"
    assert freshness.badge_color(600) == "orange"
    assert freshness.badge_color(7200) == "red"
    assert freshness.badge_color(None) == "red"


def test_active_source_is_the_one_stamped_most_recently():
    now = pd.Timestamp("2026-01-01 12:00", tz="UTC")
    sources = pd.DataFrame(
        {
            "source": ["coinmarketcap", "simulator"],
            # The simulator's rows carry a source time in 2099, but were fetched long ago.
            "stamped_at": [now, now - pd.Timedelta(days=2)],
            "last_updated_at": [now, pd.Timestamp("2099-01-01", tz="UTC")],
        }
    )
    assert freshness.active_source(sources) == "coinmarketcap"
    assert freshness.active_source(sources.iloc[::-1]) == "coinmarketcap"
    assert freshness.active_source(sources.iloc[1:]) == "simulator"


def test_last_hours_is_a_day_by_the_clock_not_24_rows():
    now = datetime(2026, 1, 2, 12, 30, tzinfo=UTC)
    # Hourly rows for two days with every third hour missing: 24 rows span about 36 hours.
    hours = [now.replace(minute=0) - timedelta(hours=h) for h in range(48) if h % 3]
    frame = pd.DataFrame({"hour_at": hours, "close_price": range(len(hours))})
    day = freshness.last_hours(frame, 24, now)
    assert len(day) == 16
    assert min(day["hour_at"]) == now.replace(minute=0) - timedelta(hours=23)
