"""Market hours from the session tables: the next open as exchange_calendars says, without its minute tables."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from bot.config import SymbolConfig
from bot.feeds.market_hours import market_clock
from bot.feeds.yahoo import YahooFeed, YahooSettings, next_open

exchange_calendars = pytest.importorskip("exchange_calendars")
UTC = timezone.utc


@pytest.mark.parametrize("code", ["XNYS", "XTKS", "CMES"])  # New York; Tokyo opens at 00:00 UTC; CME the day before
def test_the_next_open_is_the_calendars_own_through_holidays_weekends_and_clock_changes(code):
    # Its own calendar object (get_calendar hands out one cached per code): next_open builds minute tables in it.
    calendar = exchange_calendars.get_calendar(code, start="2025-01-02")
    starts = [datetime(2025, 11, 24, tzinfo=UTC), datetime(2025, 12, 22, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC)]
    moments = [start + timedelta(minutes=53 * step) for start in starts for step in range(10 * 24 * 60 // 53)]
    for moment in moments:
        expected = calendar.next_open(pd.Timestamp(moment)).to_pydatetime()
        assert next_open(calendar, moment) == expected, f"{code} at {moment:%Y-%m-%d %H:%M} UTC"


def test_market_hours_do_not_build_the_calendars_table_of_every_trading_minute():
    # That table spans the calendar's 20 years: 30 MB held for as long as the bot runs, and 0.6 s to build.
    feed = YahooFeed("yahoo", YahooSettings(), [SymbolConfig(id="^RUT", feed="yahoo", asset_class="index")])
    saturday = datetime(2026, 9, 26, 12, 0, tzinfo=UTC)
    assert feed.next_poll_time(saturday) == datetime(2026, 9, 28, 13, 30, tzinfo=UTC)
    assert "minutes" not in vars(feed.calendar) and "minutes_nanos" not in vars(feed.calendar)


def truth(schedule: pd.DataFrame, confirmed_at: pd.Series, now: datetime) -> tuple[bool, object]:
    """Say from the calendar's own table whether a session trades at `now`, and the newest one confirmable."""
    stamp = pd.Timestamp(now)
    began = schedule["open"].searchsorted(stamp, side="right") - 1  # the last session opened by now
    trading = began >= 0 and stamp < schedule["close"].iloc[began]
    closed = confirmed_at.searchsorted(stamp, side="right") - 1
    return bool(trading), schedule.index[closed].date() if closed >= 0 else None


# Sydney opens the evening before its session's date in UTC (in its summer), CME every day; Tokyo at midnight UTC.
@pytest.mark.parametrize("code", ["XASX", "CMES", "XNYS", "XLON", "XTKS"])
def test_the_market_clock_says_open_exactly_when_the_calendar_has_a_session_trading(code):
    # Was: the session looked up by the UTC date. Sydney's Monday session opens Sunday 23:00 UTC (AEDT): from then to
    # midnight UTC the market counted as closed, and the next open it pointed at was Tuesday's, so a Yahoo feed on
    # XASX slept through every session and confirmed each close a day late.
    calendar = exchange_calendars.get_calendar(code, start="2025-06-02", end="2026-06-30")
    schedule = calendar.schedule
    delay = timedelta(minutes=30)
    confirmed_at = schedule["close"] + delay
    # Around Sydney's clock changes (2025-10-05, 2026-04-05), London's (2025-10-26), New York's
    # (2026-03-08) and its half days (2025-11-28, 2025-12-24).
    starts = [datetime(2025, 10, 3, tzinfo=UTC), datetime(2025, 10, 24, tzinfo=UTC), datetime(2025, 11, 26, tzinfo=UTC),
              datetime(2025, 12, 22, tzinfo=UTC), datetime(2026, 3, 6, tzinfo=UTC), datetime(2026, 4, 3, tzinfo=UTC)]
    for moment in (start + timedelta(minutes=53 * step) for start in starts for step in range(3 * 24 * 60 // 53)):
        clock = market_clock(calendar, moment, delay)
        trading, confirmable = truth(schedule, confirmed_at, moment)
        assert (clock.is_open, clock.last_confirmable) == (trading, confirmable), f"{code} at {moment:%a %Y-%m-%d %H:%M}"
        if clock.is_open:
            assert clock.close_at == schedule.loc[pd.Timestamp(clock.session), "close"].to_pydatetime()


def test_a_feed_on_sydneys_calendar_polls_through_the_session_that_opens_on_the_utc_day_before():
    # Was the next open after Monday's session (Monday 23:00 UTC): the feed slept through the whole session.
    feed = YahooFeed("yahoo", YahooSettings(calendar="XASX"), [SymbolConfig(id="XJO", feed="yahoo", asset_class="index")])
    monday_session_begun = datetime(2025, 10, 5, 23, 30, tzinfo=UTC)  # 10:30 AEDT, Monday 6 October
    assert feed.next_poll_time(monday_session_begun) is None
