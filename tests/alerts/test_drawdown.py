"""drawdown: the close a threshold below the all-time high, once per decline, and ^RUT's 2022 bear market."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from alerts.messages import format_alert
from alerts.rules.drawdown import DrawdownParams
from tests.alerts.drive import bars_from, day, drive, drive_with_restart, load_csv, make_rule

CASES = [
    # (case, closes, thresholds, [(bar index, threshold)])
    ("20% below the high", [100, 90, 80], [20.0], [(2, 20)]),
    ("19.9% is not 20%", [100, 90, 80.1], [20.0], []),
    ("a gap through two thresholds alerts the deeper one once", [100, 65], [20.0, 30.0], [(1, 30)]),
    ("each threshold once per decline", [100, 79, 85, 78, 69, 75, 68], [20.0, 30.0], [(1, 20), (4, 30)]),
    ("a new high starts a new decline", [100, 79, 101, 80], [20.0], [(1, 20), (3, 20)]),
    ("equalling the high is not a new high", [100, 79, 100, 79], [20.0], [(1, 20)]),
    # 3.0 -> 2.1 is 29.999999999999993% below before rounding: a tie with the mark, which it reaches.
    ("a close at the threshold through float noise crosses it", [3.0, 2.7, 2.1], [20.0, 30.0], [(2, 30)]),
]


@pytest.mark.parametrize("case,closes,thresholds,expected", CASES, ids=[c[0] for c in CASES])
def test_drawdowns(case, closes, thresholds, expected):
    """Each case: closes and the drawdowns that alert (restart-proof too)."""
    rule = make_rule("drawdown", thresholds_pct=thresholds, min_history_days=0)
    bars = bars_from(closes)
    events = drive(rule, bars).events
    index = {b.time: i for i, b in enumerate(bars)}
    assert [(index[e.bar_time], e.values["threshold_pct"]) for e in events] == expected
    for cut in range(1, len(bars)):
        assert drive_with_restart(rule, bars, cut) == events


def test_message():
    """The alert gives the depth, the close and the high it is measured from."""
    (event,) = drive(make_rule("drawdown", thresholds_pct=[20], min_history_days=0), bars_from([100, 75]),
                     symbol="BTC").events
    assert format_alert(event).startswith(
        "📉 BTC 25.0% below its all-time high (past the 20% mark): close 75.00 against 100.00 of 2024-01-01"
    )


@pytest.mark.parametrize("value", [[], [0], [100], [-5]])
def test_bad_thresholds(value):
    """Thresholds must be percents strictly between 0 and 100."""
    with pytest.raises(ValidationError):
        DrawdownParams(thresholds_pct=value)


def test_golden_rut_2022_bear_market():
    """^RUT fell 20% from its 2021-11-08 high (2442.74) on 2022-01-27 and 30% on 2022-06-14, then nothing until 2025.

    Checked by hand in RUT.csv: 20% below 2442.74 is 1954.19; the first close under it is 1931.29 on
    2022-01-27. 30% below is 1709.92; the first close under it is 1707.83 on 2022-06-14. The October 2023
    low (1636.94 close on 10-27, -33%) is the same decline, so it does not alert again; the decline ends
    with the new closing high of 2025-09-18.
    """
    bars = [b for b in load_csv("RUT") if b.time.year >= 2021]
    events = drive(make_rule("drawdown", thresholds_pct=[20, 30]), bars, symbol="^RUT").events
    assert [(day(e), e.values["threshold_pct"]) for e in events] == [("2022-01-27", 20), ("2022-06-14", 30)]


def test_a_decline_inside_the_first_year_is_noted_silently():
    """Thresholds crossed while warming up are not news later in the same decline; a new decline alerts."""
    closes = [100] + [75] * 400 + [101] + [79] * 3
    bars = bars_from(closes)
    events = drive(make_rule("drawdown", thresholds_pct=[20], min_history_days=365), bars).events
    assert [e.bar_time for e in events] == [bars[402].time]
