"""Bar: a frozen OHLCV record whose constructor refuses a time that is not UTC and an unknown interval."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from alerts.bars import Bar, utc


def test_the_constructor_takes_every_field_in_order_with_its_default():
    # Bar writes its __init__ out (speed): a field added to the class must be added there too.
    parameters = list(inspect.signature(Bar.__init__).parameters.values())[1:]
    fields = dataclasses.fields(Bar)
    assert [p.name for p in parameters] == [f.name for f in fields]
    assert [p.default for p in parameters] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default for f in fields]


def test_a_bar_holds_what_it_was_given_and_compares_by_value():
    bar = Bar(utc(2024, 1, 2), 1.0, 2.0, 0.5, 1.5, 10.0, "1h", False)
    assert (bar.time, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.interval, bar.final) == (
        utc(2024, 1, 2), 1.0, 2.0, 0.5, 1.5, 10.0, "1h", False)
    same = Bar(time=utc(2024, 1, 2), open=1.0, high=2.0, low=0.5, close=1.5, volume=10.0, interval="1h", final=False)
    assert bar == same and hash(bar) == hash(same)
    assert Bar(utc(2024, 1, 2), 1, 2, 0.5, 1.5) == Bar(utc(2024, 1, 2), 1, 2, 0.5, 1.5, 0.0, "1d", True)
    assert pickle.loads(pickle.dumps(bar)) == bar
    assert dataclasses.replace(bar, final=True) == Bar(utc(2024, 1, 2), 1.0, 2.0, 0.5, 1.5, 10.0, "1h", True)


def test_a_bar_cannot_be_changed():
    bar = Bar(utc(2024, 1, 2), 1.0, 2.0, 0.5, 1.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        bar.close = 3.0  # type: ignore[misc]


@pytest.mark.parametrize("moment", [
    datetime(2024, 1, 2),
    datetime(2024, 1, 2, tzinfo=timezone(timedelta(hours=1))),
    datetime(2024, 1, 2, tzinfo=ZoneInfo("America/New_York")),
])
def test_a_time_that_is_not_utc_is_refused(moment):
    with pytest.raises(ValueError, match="bar time must be UTC"):
        Bar(moment, 1.0, 2.0, 0.5, 1.5)
    with pytest.raises(ValueError, match="bar time must be UTC"):
        dataclasses.replace(Bar(utc(2024, 1, 2), 1.0, 2.0, 0.5, 1.5), time=moment)


def test_a_utc_time_from_another_zone_object_is_accepted():
    assert Bar(datetime(2024, 1, 2, tzinfo=ZoneInfo("UTC")), 1.0, 2.0, 0.5, 1.5).close == 1.5
    assert Bar(datetime(2024, 1, 2, tzinfo=timezone(timedelta(0))), 1.0, 2.0, 0.5, 1.5).close == 1.5


def test_an_unknown_interval_is_refused():
    with pytest.raises(ValueError, match="unknown bar interval '2d'"):
        Bar(utc(2024, 1, 2), 1.0, 2.0, 0.5, 1.5, interval="2d")
