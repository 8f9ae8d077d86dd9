"""History arrives in chunks: time order kept, one bar time's bars never split, every bar exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.bars import Bar, utc
from bot.engine import chunks_by_time

DAY0 = utc(2000, 1, 3)


def series(days: int, start: int = 0) -> list[Bar]:
    return [Bar(DAY0 + timedelta(days=start + i), 1.0, 1.0, 1.0, 1.0, 1.0) for i in range(days)]


@pytest.mark.parametrize(("bars", "size", "expected_chunks"), [
    ({"^RUT": series(10), "IWM": series(10)}, 5, 4),  # 6 bars (3 times) per chunk, the cut after a whole time
    ({"^RUT": series(10), "IWM": series(4, start=6)}, 4, 4),
    ({"^RUT": series(3)}, 2000, 1),
    ({}, 10, 1),
])
def test_chunks_keep_time_order_and_each_bar_time_whole(bars, size, expected_chunks):
    chunks = chunks_by_time(bars, size)
    assert len(chunks) == expected_chunks
    times = [max(b.time for s in chunk.values() for b in s) for chunk in chunks if chunk]
    firsts = [min(b.time for s in chunk.values() for b in s) for chunk in chunks if chunk]
    assert all(last < first for last, first in zip(times, firsts[1:])), "a later chunk starts after the last ends"
    for symbol, series_ in bars.items():
        assert [b for chunk in chunks for b in chunk.get(symbol, [])] == series_
