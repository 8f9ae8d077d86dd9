"""Data quality shared by every feed: what is dropped, what is held back, staleness and backoff."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.bars import Bar, bar_problem
from bot.feeds.quality import Backoff, StaleTracker, retry_after_seconds, screen_bars
from bot.feeds.settings import FeedSettings

NOW = datetime(2026, 9, 25, 12, tzinfo=timezone.utc)
NAN = float("nan")


def day(n: int) -> datetime:
    return datetime(2026, 9, 1, tzinfo=timezone.utc) + timedelta(days=n)


def bar(n: int, close: float, final: bool = True, high: float | None = None, open_: float | None = None) -> Bar:
    open_ = close if open_ is None else open_
    return Bar(day(n), open_, max(open_, close) if high is None else high, min(open_, close), close, 1.0, "1d", final)


STORED = bar(0, 100.0)


@pytest.mark.parametrize(
    "bars, kept, reason",
    [
        ([bar(1, 101), bar(2, 102)], [1, 2], None),
        ([bar(1, NAN), bar(2, 102)], [2], "not a number"),
        ([bar(1, -5.0), bar(2, 102)], [2], "zero or negative"),
        ([bar(1, 101), Bar(day(40), 1, 1, 1, 1)], [1], "future"),
        ([bar(-3, 99), bar(1, 101)], [1], "older than the newest stored"),
        ([bar(1, 160), bar(2, 101)], [2], "reverted"),  # a one-bar spike
        ([bar(1, 60), bar(2, 99)], [2], "reverted"),  # a one-bar hole
        ([bar(1, 130), bar(2, 131)], [1, 2], None),  # a big move that holds is real
        ([bar(1, 101), bar(2, 150)], [1], None),  # a jump on the newest bar is held, not dropped
        ([bar(1, 101), bar(2, 101.5, final=False, high=190)], [1], None),  # a forming wick far above: held
        ([bar(1, 101), bar(1, 101.2)], [1], None),  # a repeated day: the later copy wins
    ],
)
def test_screen_bars_drops_or_holds_what_is_not_trustworthy(bars, kept, reason):
    screened = screen_bars("X", bars, NOW, STORED, spike_pct=20.0)
    assert [(b.time - day(0)).days for b in screened.kept] == kept
    if reason:
        assert any(reason in why for _, why in screened.dropped), screened.dropped
    if kept == [1, 2] or reason:
        return
    assert screened.held or len(set(b.time for b in bars)) < len(bars)


def test_a_repeated_day_keeps_the_later_copy():
    screened = screen_bars("X", [bar(1, 101), bar(1, 101.2)], NOW, STORED, spike_pct=20.0)
    assert [b.close for b in screened.kept] == [101.2]


def test_a_forming_bar_after_a_held_jump_is_held_too():
    screened = screen_bars("X", [bar(1, 150), bar(2, 151, final=False)], NOW, STORED, spike_pct=20.0)
    assert screened.kept == () and len(screened.held) == 2


def test_thresholds_come_per_asset_class_with_defaults():
    settings = FeedSettings(spike_pct={"crypto": 55})
    assert settings.spike_threshold("crypto") == 55
    assert settings.spike_threshold("index") == 12
    assert settings.spike_threshold("etf") == 15


def test_stale_marks_say_since_when_and_why():
    tracker = StaleTracker(timedelta(minutes=30))
    tracker.ok("BTC", NOW)
    tracker.failed("BTC", NOW + timedelta(minutes=5), "the exchange did not answer in time")
    assert tracker.stale(NOW + timedelta(minutes=29)) == {}
    mark = tracker.stale(NOW + timedelta(minutes=31))["BTC"]
    assert mark.since == NOW and mark.why == "the exchange did not answer in time"
    tracker.ok("BTC", NOW + timedelta(minutes=32))
    assert tracker.stale(NOW + timedelta(minutes=33)) == {}


def test_backoff_doubles_with_jitter_and_honours_retry_after():
    backoff = Backoff(base_seconds=10, max_seconds=300, rng=random.Random(7))
    delays = [(backoff.failed("X", NOW) - NOW).total_seconds() for _ in range(7)]
    for attempt, delay in enumerate(delays):
        ceiling = min(300, 10 * 2 ** attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert (backoff.failed("Y", NOW, retry_after=120) - NOW).total_seconds() >= 120
    backoff.succeeded("X")
    assert backoff.waiting("X", NOW) is None and backoff.waiting("Y", NOW) is not None


@pytest.mark.parametrize("headers, seconds", [({"Retry-After": "30"}, 30.0), ({"retry-after": "x"}, None), ({}, None)])
def test_retry_after_is_read_in_seconds(headers, seconds):
    assert retry_after_seconds(headers) == seconds


@pytest.mark.parametrize(
    "stem, asset_class",
    [("RUT", "index"), ("GSPC", "index"), ("IWM", "etf"), ("IWN", "etf"), ("BTC-USD", "crypto"),
     ("ETH-USD", "crypto"), ("SOL-USD", "crypto"), ("XRP-USD", "crypto"), ("DOGE-USD", "crypto")],
)
def test_real_history_passes_untouched(market_data, stem, asset_class):
    from tests.fakes.yahoo import read_csv_rows

    rows = read_csv_rows(market_data / f"{stem}.csv")
    bars = [Bar(datetime(r.day.year, r.day.month, r.day.day, tzinfo=timezone.utc), r.open, r.high, r.low, r.close,
                r.volume or 0) for r in rows]
    screened = screen_bars(stem, bars, NOW.replace(year=2027), None, FeedSettings().spike_threshold(asset_class))
    assert screened.dropped == () and screened.held == () and len(screened.kept) == len(bars)


# Closes around STORED's 100 at and across the thresholds below, and the prices bar_problem refuses.
PRICES = st.sampled_from([100.0, 110.0, 120.0, 125.0, 130.0, 80.0, 75.0, 60.0, 0.0, -5.0, NAN, float("inf")])
SCREENED_BAR = st.builds(lambda n, close, final, wick: Bar(day(n), close, close * wick, close, close, 1.0, "1d", final)
                         if close == close and close > 0 else Bar(day(n), close, close, close, close, 1.0, "1d", final),
                         st.sampled_from([-1, 0, 1, 2, 24, 30]), PRICES, st.booleans(), st.sampled_from([1.0, 1.5, 3.0]))


@settings(max_examples=1500, deadline=None)
@given(st.lists(SCREENED_BAR, min_size=0, max_size=2), st.one_of(st.none(), st.just(STORED)),
       st.sampled_from([10.0, 20.0, 25.0]), st.booleans())
def test_a_poll_screened_as_a_list_or_as_any_iterable_comes_out_the_same(bars, previous, spike_pct, checked):
    # A list of one bar takes a short path (a composite's day, most live polls); an iterator always the full one.
    if checked:
        bars = [b for b in bars if bar_problem(b) is None]
    as_list = screen_bars("X", list(bars), NOW, previous, spike_pct, prices_checked=checked)
    as_iterator = screen_bars("X", iter(bars), NOW, previous, spike_pct, prices_checked=checked)
    assert as_list == as_iterator
