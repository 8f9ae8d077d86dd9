"""The pure /status figures: day change, distance from the high, staleness, correlation, levels."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.bars import Bar
from alerts.evaluate import step_rule
from alerts.rules import RULES
from alerts.rules.base import RuleContext
from alerts.status import (
    day_change,
    describe_levels,
    distance_from_high,
    highest_close,
    is_stale,
    net_flow_total,
    return_correlation,
)

DAY0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def bars(closes, start=DAY0, skip_weekends=False):
    out, day = [], start
    for close in closes:
        while skip_weekends and day.weekday() >= 5:
            day += timedelta(days=1)
        out.append(Bar(day, close, close, close, close))
        day += timedelta(days=1)
    return out


def test_day_change_compares_the_last_two_closes():
    change = day_change(bars([100.0, 103.0]))
    assert change.price == 103.0 and change.change_pct == pytest.approx(3.0)
    assert day_change(bars([100.0])).change_pct is None
    assert day_change([]) is None


def test_distance_from_high_is_negative_below_it():
    assert distance_from_high(90.0, 100.0) == pytest.approx(-10.0)
    # The high was set the first day the close reached it: a tie is not a new high (as the new_ath rule says).
    assert highest_close(bars([1.0, 5.0, 5.0, 2.0])) == (5.0, DAY0 + timedelta(days=1))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([1.0, 2.0, 3.0, 5.0]), min_size=1, max_size=12))
def test_the_stored_closes_high_is_the_one_the_new_ath_rule_tracks(closes):
    # /status falls back on the stored closes when no new_ath rule watches a symbol: same high, same day.
    rule = RULES["new_ath"]("ath", RULES["new_ath"].Params(min_history_days=0))
    state = None
    for bar in bars(closes):
        state, _ = step_rule(rule, state, "X", bar, RuleContext())
    assert state is not None
    assert highest_close(bars(closes)) == (state["ath"], datetime.fromisoformat(state["ath_time"]))


@pytest.mark.parametrize(
    "asset_class, age_days, stale",
    [
        ("crypto", 1.5, False),
        ("crypto", 2.5, True),
        ("index", 4.5, False),  # Friday's bar on a Tuesday morning after a Monday holiday
        ("index", 6.0, True),
        ("etf", 5.5, True),
    ],
)
def test_staleness_allows_weekends_for_markets_that_close(asset_class, age_days, stale):
    now = DAY0 + timedelta(days=age_days)
    assert is_stale(DAY0, now, asset_class) is stale


def test_no_data_is_stale():
    assert is_stale(None, DAY0, "crypto")


def test_correlation_of_identical_moves_is_one_and_of_mirrored_moves_minus_one():
    moves = [1 + 0.01 * math.sin(i * 1.7) for i in range(120)]
    closes = [100.0]
    for m in moves:
        closes.append(closes[-1] * m)
    mirrored = [100.0]
    for m in moves:
        mirrored.append(mirrored[-1] / m)
    leader = bars(closes)
    now = leader[-1].time
    assert return_correlation(bars(closes), leader, 30, now) == pytest.approx(1.0)
    assert return_correlation(bars(mirrored), leader, 90, now) == pytest.approx(-1.0, abs=1e-3)


def test_correlation_aligns_weekend_crypto_moves_with_the_index_week():
    index = bars([100 + i + (i % 3) for i in range(100)], skip_weekends=True)
    by_day = {b.time.date(): b.close for b in index}
    crypto_closes, last = [], 100.0
    day = DAY0
    while day <= index[-1].time:
        last = by_day.get(day.date(), last)  # on weekends the coin sits still: same moves on shared days
        crypto_closes.append(last)
        day += timedelta(days=1)
    crypto = bars(crypto_closes)
    assert return_correlation(crypto, index, 90, index[-1].time) == pytest.approx(1.0)


def test_correlation_needs_enough_shared_days():
    assert return_correlation(bars([1.0, 2.0, 3.0]), bars([1.0, 2.0, 3.0]), 30, DAY0 + timedelta(days=3)) is None
    flat = bars([5.0] * 40)
    assert return_correlation(flat, bars([1.0 + i for i in range(40)]), 30, flat[-1].time) is None


def test_net_flow_total_sums_the_window_only():
    flows = [(DAY0 + timedelta(days=i), -1e9) for i in range(10)]
    assert net_flow_total(flows, 3, DAY0 + timedelta(days=9)) == pytest.approx(-4e9)
    assert net_flow_total([], 3, DAY0) is None


def test_levels_read_in_words():
    state = {"levels": {"2442.74": {"level": 2442.74, "source": "configured", "phase": "broken"},
                        "x": {"level": 2100.0, "source": "prior all-time high of 2018-08-31", "phase": "above"}}}
    assert describe_levels(state, price=2500.0) == [
        "2,100.00 (prior all-time high of 2018-08-31): price above it, nothing pending (price +19.0% from it)",
        "2,442.74: broken, waiting for a retest (price +2.3% from it)",
    ]
    assert describe_levels(None) == [] and describe_levels({"levels": "garbage"}) == []
