"""Helpers shared by rule kinds: a percent change compared with a mark decides as the rounded change does."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.rules.common import ROUNDING_MARGIN, pct_change, pct_change_reaches

PRICES = st.floats(min_value=1e-6, max_value=1e7, allow_nan=False, allow_infinity=False)


@settings(max_examples=500, deadline=None)
@given(start=PRICES, end=PRICES, offset=st.sampled_from([0.0, 1e-12, -1e-12, 4e-10, -4e-10, 1e-9, -1e-9,
                                                        ROUNDING_MARGIN, -ROUNDING_MARGIN, 2e-6, -2e-6, 5.0]))
def test_reaches_decides_as_the_rounded_change(start, end, offset):
    # Marks at, and a hair either side of, the change itself: where skipping the rounding could go wrong.
    mark = pct_change(start, end) + offset
    assert pct_change_reaches(start, end, mark) == (pct_change(start, end) >= mark)


@pytest.mark.parametrize("start, end, mark, reaches", [
    (3.0, 3.3, 10.0, True),           # 9.999999999999986 before rounding: a tie reaches the mark
    (100.0, 110.0, 10.0, True),       # 10.000000000000009 before rounding
    (100.0, 109.99, 10.0, False),
    (100.0, 90.0, -10.0, True),       # -9.999999999999998 before rounding
    (3.0, 2.1, -30.0, True),          # -29.999999999999993 before rounding
])
def test_reaches_at_float_noise_ties(start, end, mark, reaches):
    assert pct_change_reaches(start, end, mark) is reaches


@pytest.mark.parametrize("first", ["store", "rules"])
def test_one_text_per_instant_for_rules_and_tables(first):
    """The rules and the store share one cache of bar-time texts: each writes what it wrote without it."""
    from datetime import datetime, timedelta, timezone

    from alerts.rules import common
    from storage import base

    utc = datetime(2031, 5, 6, 7, 8, 9, tzinfo=timezone.utc)  # an instant no other test caches
    paris = utc.astimezone(timezone(timedelta(hours=2)))  # the same instant in another zone
    calls = [lambda: base.iso(paris), lambda: common.iso(utc)] if first == "store" else \
        [lambda: common.iso(utc), lambda: base.iso(paris)]
    texts = [call() for call in calls]
    assert texts == ["2031-05-06T07:08:09+00:00"] * 2
    assert common.iso(paris) == "2031-05-06T09:08:09+02:00"  # the rules write a zoned time as it is
    assert base.iso(utc) == base.iso(paris) == "2031-05-06T07:08:09+00:00"
