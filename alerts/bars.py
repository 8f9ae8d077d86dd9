"""Bars and series: the market data every rule reads."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

INTERVAL_SECONDS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400, "1w": 604800}


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar; `time` is the bar's open in UTC, `final` is False while the bar is still forming."""

    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0
    interval: str = "1d"
    final: bool = True

    # Written out, not generated: a frozen dataclass's own __init__ sets each field through object.__setattr__
    # and then calls __post_init__, which is half the cost of reading a CSV row. Same fields, same checks.
    def __init__(self, time: datetime, open: float, high: float, low: float, close: float, volume: float = 0.0,
                 interval: str = "1d", final: bool = True) -> None:
        tz = time.tzinfo
        if tz is not _UTC and (tz is None or time.utcoffset() != _UTC_OFFSET):
            raise ValueError(f"bar time must be UTC, got {time!r}")
        if interval not in INTERVAL_SECONDS:
            raise ValueError(f"unknown bar interval {interval!r}")
        _set_time(self, time)
        _set_open(self, open)
        _set_high(self, high)
        _set_low(self, low)
        _set_close(self, close)
        _set_volume(self, volume)
        _set_interval(self, interval)
        _set_final(self, final)

    @property
    def close_time(self) -> datetime:
        """Return when this bar closes."""
        return self.time + timedelta(seconds=INTERVAL_SECONDS[self.interval])


_UTC = timezone.utc
_UTC_OFFSET = timezone.utc.utcoffset(None)
# The slots' own setters (a frozen class refuses plain assignment): what object.__setattr__ would find by name.
_set_time, _set_open, _set_high, _set_low, _set_close, _set_volume, _set_interval, _set_final = (
    Bar.__dict__[name].__set__ for name in ("time", "open", "high", "low", "close", "volume", "interval", "final"))


# No market has quoted a price this high (bitcoin in Vietnamese dong is about 3e9): a bigger one is a bad print,
# which as the first bar of a history would stand as the all-time high for good (it has no bar before it to be
# judged against). Tiny prices stay: memecoins trade at 1e-8 dollars.
MAX_PRICE = 1e15


def bar_problem(bar: Bar) -> str | None:
    """Say what is wrong with a bar's prices, or None when they are plausible."""
    o, h, low, c = bar.open, bar.high, bar.low, bar.close
    # The usual bar first, in one expression (history screens every bar twice): finite positive floats whose
    # high and low bracket the open and close, and a volume that is not negative (NaN fails every comparison).
    if (type(o) is float and type(h) is float and type(low) is float and type(c) is float
            and 0 < o <= MAX_PRICE and 0 < h <= MAX_PRICE and 0 < low <= MAX_PRICE and 0 < c <= MAX_PRICE
            and h >= max(o, c, low) * (1 - 1e-9) and low <= min(o, c) * (1 + 1e-9)
            and (bar.volume is None or 0 <= bar.volume < math.inf)):
        return None
    prices = (bar.open, bar.high, bar.low, bar.close)
    if any(p is None or not isinstance(p, (int, float)) or math.isnan(p) or math.isinf(p) for p in prices):
        return "a price is missing or not a number"
    if any(p <= 0 for p in prices):
        return "a price is zero or negative"
    if max(prices) > MAX_PRICE:
        return f"a price of {max(prices):g} is beyond any market's (over {MAX_PRICE:g})"
    if bar.high < max(bar.open, bar.close, bar.low) * (1 - 1e-9) or bar.low > min(bar.open, bar.close) * (1 + 1e-9):
        return f"high {bar.high} / low {bar.low} do not bracket open {bar.open} and close {bar.close}"
    if bar.volume is not None and not 0 <= bar.volume < math.inf:
        return "volume is negative or not a number"
    return None


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """Build a UTC datetime (a convenience for tests and fixtures)."""
    return datetime(year, month, day, hour, minute, tzinfo=timezone.utc)
