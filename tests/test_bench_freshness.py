"""The freshness benchmark's stage breakdown places a quote on Airflow's timeline correctly.

Pure logic over recorded timestamps (no services): the benchmark itself runs with `make bench`.
"""

from __future__ import annotations

import pytest

from bench.freshness import STAGES, Timeline

# load_quotes task instances and crypto_transform runs, as (start, end) epoch seconds.
TIMELINE = Timeline(
    loads=[(100.0, 106.0), (160.0, 167.0)],
    transforms=[(108.0, 120.0), (121.0, 135.0), (170.0, 182.0)],
)


def test_stages_follow_one_quote_through_load_asset_and_dbt() -> None:
    # fetched at 98, loaded (row's loaded_at) at 103, seen in the mart at 119.6.
    stages = TIMELINE.stages(98.0, 103.0, 119.6)
    assert stages is not None
    assert dict(zip(STAGES, stages, strict=True)) == pytest.approx(
        {"sensor wake-up": 2.0, "load": 6.0, "Asset trigger": 2.0, "dbt": 11.6}
    )
    assert sum(stages) == pytest.approx(119.6 - 98.0)


def test_a_quote_seen_just_after_its_run_ended_belongs_to_that_run() -> None:
    # Seen 1 s after the 108..120 run ended: one poll late, still that run, not the next.
    stages = TIMELINE.stages(98.0, 103.0, 121.0)
    assert stages is not None
    assert stages[2] == pytest.approx(2.0)  # the 108 run, not the one starting at 121
    assert stages[3] == pytest.approx(13.0)


def test_a_run_already_going_when_the_load_ended_has_no_trigger_wait() -> None:
    timeline = Timeline(loads=[(100.0, 106.0)], transforms=[(104.0, 115.0)])
    stages = timeline.stages(99.0, 102.0, 114.0)
    assert stages is not None
    assert stages[2] == 0.0
    assert stages[3] == pytest.approx(114.0 - 106.0)


@pytest.mark.parametrize(
    ("fetched", "loaded", "seen"),
    [
        (50.0, 55.0, 119.0),  # loaded while no load_quotes task ran
        (98.0, 103.0, 150.0),  # seen while no crypto_transform run ran
    ],
)
def test_quotes_off_the_timeline_are_not_placed(fetched: float, loaded: float, seen: float):
    assert TIMELINE.stages(fetched, loaded, seen) is None
