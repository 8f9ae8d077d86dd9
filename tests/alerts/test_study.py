"""The event study and co-movement: constructed series where every figure is known, and a hand check on real data."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from alerts.bars import Bar, utc
from alerts.closes import Closes
from alerts.comovement import aligned_returns, comovement, rolling_correlation
from alerts.events import AlertEvent
from alerts.study import Signal, Summary, closes_from_bars, event_study, follower_paths, signal_episodes
from tests.market import market_folder


def daily(start: date, closes: list[float], every: int = 1) -> Closes:
    """Closes on consecutive days (or every `every` days) from `start`."""
    days = [start + timedelta(days=i * every) for i in range(len(closes))]
    return Closes.of(days, closes)


def weekdays(start: date, closes: list[float]) -> Closes:
    days, day = [], start
    while len(days) < len(closes):
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return Closes.of(days, closes)


def alert(day: date, symbol: str = "^RUT", rule: str = "rut_ath", price: float = 1.0) -> AlertEvent:
    return AlertEvent(rule, "new_ath", symbol, utc(day.year, day.month, day.day), {"price": price})


D0 = date(2021, 1, 4)  # a Monday


# --- episodes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offsets", "gap", "expected"),
    [
        ([0], 30, [(0, 1)]),
        ([0, 5, 10], 30, [(0, 3)]),  # all within 30 days of the previous: one episode
        ([0, 29, 58], 30, [(0, 3)]),  # each within 30 of the one before: the episode runs on
        ([0, 30], 30, [(0, 1), (30, 1)]),  # exactly the gap: a fresh episode
        ([0, 5, 50, 51], 30, [(0, 2), (50, 2)]),
        ([0, 1, 2], 0, [(0, 1), (1, 1), (2, 1)]),  # gap 0: every alert is a signal
    ],
)
def test_alerts_fold_into_episodes(offsets, gap, expected):
    events = [alert(D0 + timedelta(days=o), price=100 + o) for o in offsets]
    signals = signal_episodes(events, gap)
    assert [((s.day - D0).days, s.alerts) for s in signals] == expected
    assert all(s.price == 100 + (s.day - D0).days for s in signals)  # the episode's first alert's price


def test_episodes_are_kept_apart_per_rule_and_symbol():
    events = [alert(D0), alert(D0 + timedelta(days=3), symbol="IWN"), alert(D0 + timedelta(days=4), rule="other")]
    signals = signal_episodes(events, 30)
    assert [(s.symbol, s.rule_id) for s in signals] == [("^RUT", "rut_ath"), ("IWN", "rut_ath"), ("^RUT", "other")]


# --- forward returns -------------------------------------------------------------------------


def study_of(signal_days, follower, leader=None, horizons=(7, 30)):
    leader = leader if leader is not None else weekdays(D0 - timedelta(days=400), [100.0] * 700)
    signals = [Signal(d, "^RUT", "rut_ath", "new_ath") for d in signal_days]
    (study,) = event_study(signals, {"^RUT": leader}, {"BTC": follower}, horizons)
    return study


def test_forward_return_is_the_close_h_calendar_days_later_over_the_signal_day_close():
    follower = daily(D0, [100.0 + i for i in range(60)])  # close on day i is 100 + i
    study = study_of([D0 + timedelta(days=3)], follower)
    seven = study.outcome(D0 + timedelta(days=3), 7)
    assert seven.status == "ok"
    assert (seven.entry_day, seven.entry_price) == (D0 + timedelta(days=3), 103.0)
    assert (seven.exit_day, seven.exit_price) == (D0 + timedelta(days=10), 110.0)
    assert seven.return_pct == pytest.approx((110 / 103 - 1) * 100)
    thirty = study.outcome(D0 + timedelta(days=3), 30)
    assert thirty.exit_price == 133.0


def test_a_follower_without_a_bar_that_day_uses_its_last_close_before():
    # A follower with a bar every other day: entry and exit fall back to the previous close.
    follower = daily(D0, [100.0 + 2 * i for i in range(40)], every=2)  # day 2k closes 100 + 2k
    outcome = study_of([D0 + timedelta(days=5)], follower).outcome(D0 + timedelta(days=5), 7)
    assert outcome.entry_day == D0 + timedelta(days=4) and outcome.entry_price == 104.0
    assert outcome.exit_day == D0 + timedelta(days=12) and outcome.exit_price == 112.0


@pytest.mark.parametrize(
    ("signal_offset", "horizon", "status", "needs"),
    [
        (20, 7, "ok", None),
        (22, 7, "ok", None),  # exit day is the last day of data: known
        (23, 7, "not_yet", 30),  # needs one more day than there is
        (29, 30, "not_yet", 59),
    ],
)
def test_signals_too_close_to_the_end_say_not_yet_and_name_the_date(signal_offset, horizon, status, needs):
    follower = daily(D0, [100.0] * 30)  # data to D0 + 29
    day = D0 + timedelta(days=signal_offset)
    outcome = study_of([day], follower, horizons=(horizon,)).outcome(day, horizon)
    assert outcome.status == status
    if needs is not None:
        assert outcome.needs_data_to == D0 + timedelta(days=needs)
        assert outcome.return_pct is None
        assert outcome.note == f"not yet: needs data to {D0 + timedelta(days=needs)}"


def test_a_signal_before_the_follower_traded_is_left_out_of_the_figures():
    follower = daily(D0 + timedelta(days=100), [100.0] * 100)
    study = study_of([D0, D0 + timedelta(days=110)], follower)
    assert study.outcome(D0, 7).status == "no_data"
    assert study.skipped == 1
    assert study.rows[0].signals.count == 1


def test_a_stale_follower_price_is_not_an_entry():
    # The follower stopped a week before the signal: there is no price to enter at.
    follower = daily(D0, [100.0] * 10)
    day = D0 + timedelta(days=20)
    assert study_of([day], follower).outcome(day, 7).status == "no_data"


def test_own_ath_after_the_signal_is_found_and_timed():
    closes = [100.0, 120.0, 110.0, 105.0, 100.0, 119.0, 121.0, 90.0] + [90.0] * 40
    follower = daily(D0, closes)
    day = D0 + timedelta(days=3)  # after the 120 high; the next close above 120 is day 6 (121)
    study = study_of([day], follower, horizons=(2, 7))
    assert study.outcome(day, 7).ath_after_days == 3
    assert study.outcome(day, 2).ath_after_days is None  # not within two days
    assert [r.ath_within for r in study.rows] == [0, 1]
    assert study.follower_ath_days == (3,)


def test_own_flip_after_the_signal_is_found_and_timed():
    follower = daily(D0, [100.0] * 60)
    day = D0 + timedelta(days=5)
    flips = [D0 + timedelta(days=2), D0 + timedelta(days=5), D0 + timedelta(days=25)]  # before, same day, after
    signals = [Signal(day, "^RUT", "rut_ath", "new_ath")]
    leader = weekdays(D0, [100.0] * 50)
    (study,) = event_study(signals, {"^RUT": leader}, {"BTC": follower}, (7, 30), {"BTC": flips})
    assert study.outcome(day, 7).flip_after_days is None
    assert study.outcome(day, 30).flip_after_days == 20
    assert [r.flip_within for r in study.rows] == [0, 1]
    assert study.flips_watched and study.follower_flip_days == (20,)
    # No flip rule watches the follower: nothing is claimed either way.
    (unwatched,) = event_study(signals, {"^RUT": leader}, {"BTC": follower}, (7,))
    assert unwatched.rows[0].flip_within is None and not unwatched.flips_watched


def test_baseline_takes_every_leader_day_of_the_signal_years():
    leader = weekdays(date(2020, 1, 1), [100.0] * 900)  # 2020 .. mid 2023
    follower = daily(date(2019, 1, 1), list(np.linspace(100, 400, 2000)))  # rises every day
    study = study_of([date(2021, 3, 1), date(2022, 6, 1)], follower, leader=leader, horizons=(7,))
    assert study.baseline_years == (2021, 2022)
    leader_days_2021_2022 = sum(1 for day in leader.dates() if 2021 <= day.year <= 2022)
    baseline = study.rows[0].baseline
    assert baseline.count == leader_days_2021_2022
    assert baseline.share_positive == 100.0
    assert baseline.worst > 0


def test_each_signal_group_gets_the_baseline_of_its_own_years():
    # Two rules on one leader, signals in different years: each baseline is every leader day of its own years,
    # with the figures a study of that group alone finds.
    leader = weekdays(date(2020, 1, 1), [100.0] * 900)  # 2020 .. mid 2023
    follower = daily(date(2019, 1, 1), list(np.linspace(100, 400, 2000) ** 1.5))
    signals = [Signal(date(2020, 5, 4), "^RUT", "rut_ath", "new_ath"), Signal(date(2022, 6, 1), "^RUT", "rut_ath", "new_ath"),
               Signal(date(2023, 2, 1), "^RUT", "rut_flip", "resistance_flip")]
    together = event_study(signals, {"^RUT": leader}, {"BTC": follower}, (7, 30))
    alone = [event_study(signals[:2], {"^RUT": leader}, {"BTC": follower}, (7, 30))[0],
             event_study(signals[2:], {"^RUT": leader}, {"BTC": follower}, (7, 30))[0]]
    assert [s.baseline_years for s in together] == [(2020, 2022), (2023, 2023)]
    assert together == alone
    assert together[1].rows[0].baseline.count == sum(1 for day in leader.dates() if day.year == 2023)


def test_summary_figures():
    summary = Summary.of([10.0, -5.0, 20.0, 0.0, float("nan")])
    assert summary == Summary(4, 5.0, 6.25, 50.0, -5.0, 20.0)
    assert Summary.of([]).count == 0 and Summary.of([]).median is None


def test_follower_paths_are_indexed_to_100_at_entry_and_stop_at_the_data_end():
    follower = daily(D0, [50.0, 55.0, 60.0, 40.0])
    grid, paths = follower_paths([D0, D0 + timedelta(days=2), D0 - timedelta(days=30)], follower, 3)
    assert list(grid) == [0, 1, 2, 3]
    assert paths[0].tolist() == pytest.approx([100.0, 110.0, 120.0, 80.0])
    assert paths[1, :2].tolist() == pytest.approx([100.0, 40 / 60 * 100])
    assert np.isnan(paths[1, 2:]).all()
    assert np.isnan(paths[2]).all()  # before the follower traded


# --- co-movement -----------------------------------------------------------------------------


def test_crypto_returns_are_sampled_on_the_leader_trading_days():
    leader = weekdays(D0, [100.0, 101.0, 102.0, 103.0, 104.0, 110.0])  # Mon..Fri, then next Monday
    crypto = daily(D0, [10.0, 11.0, 12.0, 13.0, 14.0, 99.0, 99.0, 20.0])  # weekend days are skipped
    returns = aligned_returns(leader, crypto)
    assert returns.days.size == 5
    # The Monday return spans Friday's close to Monday's for both.
    assert returns.leader[-1] == pytest.approx(110 / 104 - 1)
    assert returns.follower[-1] == pytest.approx(20 / 14 - 1)


def test_comovement_of_a_follower_that_copies_the_leader_is_one():
    rng = np.random.default_rng(7)
    walk = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 800)))
    leader = weekdays(date(2020, 1, 1), list(walk))
    follower = Closes(leader.days, leader.values * 3)  # same returns
    move = comovement("^RUT", leader, "BTC", follower)
    assert move.overall == pytest.approx(1.0)
    assert all(y.correlation == pytest.approx(1.0) for y in move.years)
    ninety = move.rolling[:, move.windows.index(90)]
    assert ninety[np.isfinite(ninety)] == pytest.approx(1.0)
    assert [y.year for y in move.years] == [2020, 2021, 2022, 2023]


def test_each_rolling_correlation_is_the_plain_correlation_of_its_window():
    # Long enough that the windows are laid out in several blocks: every day's figure is its own window's.
    rng = np.random.default_rng(3)
    days = np.cumsum(rng.choice([1, 1, 1, 1, 3], 1500)).astype(np.int64)  # trading days with weekends
    x, y = rng.normal(0, 0.01, days.size), rng.normal(0, 0.01, days.size)
    y[::3] += x[::3]
    rolling = rolling_correlation(days, x, y, 30, 5)
    for day in range(days.size):
        inside = (days > days[day] - 30) & (days <= days[day])
        if inside.sum() < 5:
            assert np.isnan(rolling[day])
        else:
            assert rolling[day] == pytest.approx(np.corrcoef(x[inside], y[inside])[0, 1], abs=1e-12)


def test_closes_from_bars_keeps_final_bars_by_day():
    bars = [Bar(utc(2024, 1, 1), 1, 2, 1, 1.5), Bar(utc(2024, 1, 2), 1, 2, 1, 1.7),
            Bar(utc(2024, 1, 3), 1, 2, 1, 1.9, final=False)]
    series = closes_from_bars(bars)
    assert series.values.tolist() == [1.5, 1.7]
    assert series.dates() == [date(2024, 1, 1), date(2024, 1, 2)]


# --- by hand, on the real history ---------------------------------------------------------------


def read_closes(path: Path) -> dict[date, float]:
    with path.open() as handle:
        return {date.fromisoformat(row["date"]): float(row["close"]) for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def market() -> Path:
    return market_folder()


def test_btc_30_days_after_the_november_2020_russell_high_recomputed_by_hand(market):
    """^RUT closed at an all-time high on 2020-11-13, its first in 805 days; what did BTC do next?"""
    rut = read_closes(market / "RUT.csv")
    btc = read_closes(market / "BTC-USD.csv")
    signal = date(2020, 11, 13)
    # By hand: 13 Nov 2020 is a close above every earlier ^RUT close.
    assert rut[signal] > max(c for d, c in rut.items() if d < signal)
    # BTC's close that UTC day and 30 calendar days later (a Sunday: crypto trades every day).
    by_hand = (btc[signal + timedelta(days=30)] / btc[signal] - 1) * 100

    signals = [Signal(signal, "^RUT", "smallcap_ath", "new_ath")]
    rut_series = Closes.of(rut.keys(), rut.values())
    btc_series = Closes.of(btc.keys(), btc.values())
    (study,) = event_study(signals, {"^RUT": rut_series}, {"BTC": btc_series}, (30, 180))
    outcome = study.outcome(signal, 30)
    assert outcome.entry_price == btc[signal] == 16_317.81  # the CSV row 2020-11-13
    assert outcome.exit_day == date(2020, 12, 13)
    assert outcome.return_pct == pytest.approx(by_hand, abs=1e-9)
    assert round(outcome.return_pct, 1) == 17.3
    # And half a year on, the "surged" claim: BTC's own close 180 days later.
    half_year = study.outcome(signal, 180)
    assert half_year.return_pct == pytest.approx((btc[signal + timedelta(days=180)] / btc[signal] - 1) * 100)
    # BTC's first close above every earlier close in the file came within days.
    first_high = next(d for d in sorted(btc) if d > signal and btc[d] > max(c for e, c in btc.items() if e < d))
    assert outcome.ath_after_days == (first_high - signal).days


# --- bad input: never a crash, never an invented figure ---------------------------------------------


@pytest.mark.parametrize(
    "closes",
    [
        Closes.empty(),
        daily(D0, [float("nan")] * 40),
        daily(D0, [0.0] * 40),
        daily(D0, [-5.0] * 40),
    ],
    ids=["empty", "all-nan", "zero", "negative"],
)
def test_a_follower_without_usable_prices_gives_no_figures(closes):
    study = study_of([D0 + timedelta(days=3)], closes)
    assert [o.status for o in study.outcomes] == ["no_data", "no_data"]
    assert all(r.signals.count == 0 and r.signals.median is None for r in study.rows)
    grid, paths = follower_paths([D0], closes, 10)
    assert np.isnan(paths).all()


def test_gaps_and_bad_prices_inside_a_series_are_skipped_not_used():
    values = [100.0 + i for i in range(40)]
    values[10], values[17] = float("nan"), 0.0
    closes = daily(D0, values)
    outcome = study_of([D0 + timedelta(days=10)], closes).outcome(D0 + timedelta(days=10), 7)
    assert outcome.entry_day == D0 + timedelta(days=9)  # the NaN day falls back to the day before
    assert outcome.exit_day == D0 + timedelta(days=16)  # and the zero close is no exit price
    assert outcome.return_pct == pytest.approx((116 / 109 - 1) * 100)


def test_a_signal_on_the_follower_alone_is_not_studied_against_itself():
    leader = weekdays(D0, [100.0] * 60)
    signals = [Signal(D0, "BTC", "crypto_ath", "new_ath")]
    assert event_study(signals, {"BTC": leader}, {"BTC": leader}) == []


def test_horizons_are_sorted_and_deduplicated():
    study = study_of([D0], daily(D0, [100.0] * 400), horizons=(30, 7, 30, 0, -5))
    assert [r.horizon for r in study.rows] == [7, 30]
