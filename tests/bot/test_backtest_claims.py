"""The claims' building blocks on constructed data: flow stretches and their rally legs, own highs."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from alerts.closes import Closes
from bot.backtest.claims import flow_stretches, own_high_within


def closes(start: date, values: list[float]) -> Closes:
    return Closes.of([start + timedelta(days=i) for i in range(len(values))], values)


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def test_flow_stretches_split_at_holes_and_measure_the_rally_leg_to_the_high():
    start = date(2021, 7, 1)
    prices = closes(start, [100 + i for i in range(40)] + [139 - i for i in range(40)])  # up 40 days, then down
    flows = [(at(start + timedelta(days=i)), -1e8) for i in range(80)]  # $100M out every day
    flows += [(at(date(2026, 3, 1) + timedelta(days=i)), 5e7) for i in range(10)]  # a later stretch, inflows
    first, second = flow_stretches("IWM", flows, prices)
    assert (first.first, first.last, first.records) == (start, start + timedelta(days=79), 80)
    assert first.net_usd == pytest.approx(-8e9)
    assert first.top_day == start + timedelta(days=39)
    assert first.rally_pct == pytest.approx(39.0)
    assert first.rally_net_usd == pytest.approx(-4e9)  # the 40 days up to and including the high
    assert (second.first, second.records, second.net_usd) == (date(2026, 3, 1), 10, pytest.approx(5e8))
    assert second.top_day is None  # no prices there: no rally leg is claimed


def test_own_high_within_is_the_first_close_above_every_earlier_one():
    series = closes(date(2020, 1, 1), [10, 12, 11, 11, 11, 13, 9])
    assert own_high_within(series, date(2020, 1, 2), 10) == date(2020, 1, 6)
    assert own_high_within(series, date(2020, 1, 2), 3) is None
