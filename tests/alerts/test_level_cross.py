"""level_cross: closes crossing a level, ties, re-arming, and the real ^RUT crossing of its 2021 high."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from alerts.messages import format_alert
from alerts.rules.level_cross import LevelCrossParams
from tests.alerts.drive import bars_from, day, drive, drive_with_restart, load_csv, make_rule

CASES = [
    # (case, closes, params, [(bar index, direction)])
    ("cross up", [95, 99, 101], {}, [(2, "up")]),
    ("cross down", [105, 101, 99], {}, [(2, "down")]),
    ("either way", [95, 101, 99, 101], {}, [(1, "up"), (2, "down"), (3, "up")]),
    ("only up", [95, 101, 99, 101], {"direction": "up"}, [(1, "up"), (3, "up")]),
    ("only down", [95, 101, 99, 101], {"direction": "down"}, [(2, "down")]),
    ("a close on the level is no cross", [95, 100, 95], {}, []),
    ("touching the level then going through is one cross", [95, 100, 100, 101], {}, [(3, "up")]),
    ("the first bar only sets the side", [101, 102], {}, []),
    ("starting on the level: the side is set by the first close off it", [100, 101, 99], {}, [(2, "down")]),
    ("a gap through several levels alerts each",
     [95, 125], {"levels": [100.0, 110.0, 120.0]}, [(1, "up"), (1, "up"), (1, "up")]),
    ("rearm_pct: chop around the level alerts once", [95, 101, 99.5, 101, 99.5, 101], {"rearm_pct": 1.0, "direction": "up"},
     [(1, "up")]),
    ("rearm_pct: a real drop re-arms", [95, 101, 98, 101], {"rearm_pct": 1.0, "direction": "up"},
     [(1, "up"), (3, "up")]),
]


@pytest.mark.parametrize("case,closes,extra,expected", CASES, ids=[c[0] for c in CASES])
def test_crossings(case, closes, extra, expected):
    """Each case: closes and the crossings that alert (restart-proof too)."""
    rule = make_rule("level_cross", **{"levels": [100.0], **extra})
    bars = bars_from(closes)
    events = drive(rule, bars).events
    index = {b.time: i for i, b in enumerate(bars)}
    assert [(index[e.bar_time], e.values["direction"]) for e in events] == expected
    for cut in range(1, len(bars)):
        assert drive_with_restart(rule, bars, cut) == events


def test_message():
    """The alert says which way, the level, the close and the previous close."""
    (event,) = drive(make_rule("level_cross", levels=[100.0]), bars_from([95, 101]), symbol="BTC").events
    assert format_alert(event).startswith("⬆️ BTC closed above 100.00: 101.00 (previous close 95.00), +1.0% from the level")


@pytest.mark.parametrize(
    "params,message",
    [({}, "levels\n  Field required"), ({"levels": []}, "give at least one level"),
     ({"levels": [0]}, "positive price"), ({"levels": [1], "direction": "sideways"}, "up")],
)
def test_bad_params(params, message):
    """Config mistakes name the problem."""
    with pytest.raises(ValidationError, match=message):
        LevelCrossParams(**params)


def test_golden_rut_crosses_its_2021_closing_high():
    """^RUT first closed above 2442.74 on 2025-09-18; its own close of 2021-11-08 is exactly the level: no cross.

    Checked by hand in RUT.csv: 2021-11-08 closes 2442.74, a tie, so the side stays "below" and nothing
    fires; the November 2024 peak close was 2442.03 (2024-11-25), just under. 2025-09-18 closes 2467.70:
    the first cross up. With rearm_pct 5 a new up-cross needs a close under 2320.60 first: 2305.11 on
    2025-11-20, then 2465.98 on 2025-11-25 is the second cross up. No close after that goes back under
    2320.60, so there is no third.
    """
    rule = make_rule("level_cross", levels={"^RUT": [2442.74]}, direction="up", rearm_pct=5.0)
    events = drive(rule, load_csv("RUT"), symbol="^RUT").events
    assert [day(e) for e in events] == ["2025-09-18", "2025-11-25"]
