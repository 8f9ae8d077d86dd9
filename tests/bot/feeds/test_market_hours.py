"""Market hours from the session tables: the next open as exchange_calendars says, without its minute tables."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from bot.config import SymbolConfig
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
