"""unprofitable_share: the share of members losing money crossing a mark, in a trader's words."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from alerts.messages import format_alert
from alerts.rules.unprofitable_share import UnprofitableShareParams
from tests.alerts.drive import bars_from, drive, make_rule

CASES = [
    # (case, weekly snapshots in percent, params, [(snapshot index, direction)])
    ("rising through 40 alerts", [36.0, 38.5, 41.2], {}, [(2, "up")]),
    ("falling back does not alert by default", [38.0, 41.0, 37.0], {}, [(1, "up")]),
    ("either way alerts the fall too", [38.0, 41.0, 37.0], {"direction": "either"}, [(1, "up"), (2, "down")]),
    ("hovering around the mark alerts once", [39.0, 40.5, 39.5, 40.6, 39.8, 40.9], {}, [(1, "up")]),
    ("a real fall (2 points under 40) re-arms", [39.0, 40.5, 37.9, 40.6], {}, [(1, "up"), (3, "up")]),
    ("the first snapshot only sets the side", [45.0, 46.0], {}, []),
    ("two marks crossed at once alert each", [33.0, 46.0], {"levels": [35.0, 45.0]}, [(1, "up"), (1, "up")]),
]


@pytest.mark.parametrize("case,shares,extra,expected", CASES, ids=[c[0] for c in CASES])
def test_crossings_of_a_mark(case, shares, extra, expected):
    rule = make_rule("unprofitable_share", **{"levels": [40.0], **extra})
    bars = bars_from(shares, step_days=7)
    index = {b.time: i for i, b in enumerate(bars)}
    assert [(index[e.bar_time], e.values["direction"]) for e in drive(rule, bars).events] == expected


def test_the_alert_says_how_many_members_lose_money():
    rule = make_rule("unprofitable_share", rule_id="smallcap_fragility", levels=[40.0])
    bars = bars_from([38.4, 41.2], step_days=7)
    (event,) = [e for e in drive(rule, bars, symbol="IWM:UNPROFITABLE").events]
    text = format_alert(event)
    assert text.splitlines()[0] == ("⚠️ IWM fragility: 41 % of members lose money over 12 months, above the 40 % "
                                    "mark (previous snapshot 38 %)")
    assert "rule smallcap_fragility" in text


@pytest.mark.parametrize("params, message", [
    ({"levels": []}, "at least one mark"),
    ({"levels": [140]}, "between 0 and 100"),
    ({"levels": [0]}, "between 0 and 100"),
    ({"levels": [40], "direction": "sideways"}, "direction"),
])
def test_a_bad_mark_is_refused_saying_why(params, message):
    with pytest.raises(ValidationError, match=message):
        UnprofitableShareParams(**params)
