"""Lead/lag cross-correlation on constructed series where the lead is known."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from alerts.closes import Closes, as_date
from alerts.comovement import _close_at, lagged_returns, lead_lag

START = date(2018, 1, 1)


def closes(log_returns: np.ndarray, weekdays_only: bool = False) -> Closes:
    days = [START + timedelta(days=i) for i in range(log_returns.size)]
    series = Closes.of(days, 100 * np.exp(np.cumsum(log_returns)))
    return weekdays(series) if weekdays_only else series


def weekdays(series: Closes) -> Closes:
    """Return the closes of Mondays to Fridays only."""
    keep = np.array([day.weekday() < 5 for day in series.dates()], dtype=bool)
    return Closes(series.days[keep], series.values[keep])


def leader_and_follower(lead_days: int, seed: int = 1, days: int = 2000) -> tuple[Closes, Closes]:
    """A leader trading on weekdays and a follower that repeats its moves `lead_days` later, plus its own noise."""
    rng = np.random.default_rng(seed)
    moves = rng.normal(0, 0.01, days)
    follower = np.roll(moves, lead_days) * 2 + rng.normal(0, 0.01, days)
    follower[:lead_days] = 0
    return closes(moves, weekdays_only=True), closes(follower)


@pytest.mark.parametrize("lead_days", [5, 12])
def test_a_follower_that_repeats_the_leader_days_later_peaks_at_that_lag(lead_days):
    leader, follower = leader_and_follower(lead_days)
    result = lead_lag("^RUT", leader, "BTC", follower)
    k, r = result.peak("leads")
    assert k == lead_days and r > 0.5
    assert result.reading().startswith(f"^RUT leads by {lead_days} days")
    weekly = lead_lag("^RUT", leader, "BTC", follower, period="week")
    assert weekly.peak("leads")[0] == lead_days


def test_a_leader_that_repeats_the_follower_shows_as_following():
    follower_led, leader = leader_and_follower(8)  # swap roles: now the "follower" moves first
    result = lead_lag("^RUT", weekdays(leader), "BTC", follower_led)
    assert result.peak("follows")[0] == -8
    assert result.reading().startswith("BTC leads by 8 days")


def test_independent_series_show_no_lead_or_lag():
    rng = np.random.default_rng(9)
    leader, follower = closes(rng.normal(0, 0.01, 2000), True), closes(rng.normal(0, 0.02, 2000))
    result = lead_lag("^RUT", leader, "BTC", follower)
    assert result.reading().startswith("no lead or lag beyond noise")
    assert max(abs(r) for r in result.overall if r is not None) < 0.1


def test_a_monday_return_spans_the_weekend_for_both_and_the_split_and_rolling_windows_are_filled():
    leader, follower = leader_and_follower(5)
    ends, x, y = lagged_returns(leader, follower, lags=(0,))
    monday = np.flatnonzero((ends + 3) % 7 == 0)[0]  # day numbers: 1970-01-05 was a Monday
    friday, monday_day = ends[monday - 1], ends[monday]
    assert monday_day - friday == 3
    assert y[0, monday] == pytest.approx(follower.on(as_date(monday_day)) / follower.on(as_date(friday)) - 1)
    result = lead_lag("^RUT", leader, "BTC", follower)
    assert [name for name, _ in result.since] == ["before 2020", "since 2020"]
    assert result.rolling.shape == (len(result.rolling_ends), 61)
    assert np.isfinite(result.rolling[-1, result.lags.index(5)])


def test_each_rolling_window_is_the_plain_correlation_of_its_pairs():
    leader, follower = leader_and_follower(5, seed=4)
    result = lead_lag("^RUT", leader, "BTC", follower)
    ends, x, y = lagged_returns(leader, follower)
    end = result.rolling_ends[len(result.rolling_ends) // 2]
    inside = (ends > end - 365) & (ends <= end)
    for k in (-12, 0, 5, 30):
        row = y[result.lags.index(k)]
        keep = inside & np.isfinite(row) & np.isfinite(x)
        expected = np.corrcoef(x[keep], row[keep])[0, 1]
        assert result.rolling[len(result.rolling_ends) // 2, result.lags.index(k)] == pytest.approx(expected, abs=1e-9)


def test_a_follower_close_on_a_day_is_its_last_close_no_more_than_five_days_old():
    series = Closes(np.array([10, 12, 20], dtype=np.int64), np.array([1.0, 2.0, 3.0]))
    asked = np.array([[9, 10, 11, 15, 17], [18, 19, 20, 25, 26]], dtype=np.int64)
    found = _close_at(series, asked)
    expected = [[np.nan, 1.0, 1.0, 2.0, 2.0], [np.nan, np.nan, 3.0, 3.0, np.nan]]
    assert np.array_equal(found, np.array(expected), equal_nan=True)
    assert np.isnan(_close_at(Closes.empty(), asked)).all()
