"""A moment's UTC text is exactly what isoformat writes for it in UTC, for any instant in any time zone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import times
from alerts.times import utc_text

ZONES = st.sampled_from([timezone.utc, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))])
# Midnight openings (daily bars) and any other moment, down to the microsecond.
MOMENTS = st.one_of(
    st.dates(min_value=datetime(1, 1, 2).date(), max_value=datetime(9999, 12, 30).date()).map(
        lambda day: datetime(day.year, day.month, day.day, tzinfo=timezone.utc)),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES),
)


@settings(max_examples=300, deadline=None)
@given(moment=MOMENTS)
def test_utc_text_is_isoformat_in_utc(moment):
    times.UTC_TEXTS.clear()  # formatted now, not found from an earlier example
    expected = moment.astimezone(timezone.utc).isoformat()
    assert utc_text(moment) == expected
    assert utc_text(moment) == expected  # and found again as it was written


def test_the_same_instant_in_two_zones_is_one_text():
    midnight = datetime(2024, 3, 9, tzinfo=timezone.utc)
    assert utc_text(midnight.astimezone(timezone(timedelta(hours=-5)))) == "2024-03-09T00:00:00+00:00"
    assert utc_text(datetime(2024, 3, 9, 0, 0, 0, 1, tzinfo=timezone.utc)) == "2024-03-09T00:00:00.000001+00:00"


def test_a_live_bots_clock_readings_are_formatted_not_held():
    # A running bot writes its clock's reading (each drain of the outbox, each poll's record) every few seconds, and
    # each reading is new: held, they grew the cache by ~43,000 texts a day, about 9 MB before it was cleared.
    times.UTC_TEXTS.clear()
    start = datetime(2026, 11, 30, 3, 0, 0, 123456, tzinfo=timezone.utc)
    for n in range(2000):
        moment = start + timedelta(seconds=2 * n)
        assert utc_text(moment) == moment.isoformat()
        assert utc_text(moment) == moment.isoformat()  # a poll writes its `now` in many rows
    assert len(times.UTC_TEXTS) == 0


def test_a_daily_bars_open_is_formatted_once_and_held():
    times.UTC_TEXTS.clear()
    days = [datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(days=n) for n in range(30)]
    texts = [utc_text(day) for day in days]
    assert [utc_text(day) for day in days] == texts == [day.isoformat() for day in days]
    assert sorted(times.UTC_TEXTS) == days
