"""The replay feed serves a folder of CSVs one market day per poll, from whatever each poll asks."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from bot.config import SymbolConfig
from bot.feeds.replay import ReplayFeed, ReplaySettings

HEADER = "date,open,high,low,close,volume\n"


def write(folder, stem: str, days: list[int]) -> None:
    """Write a CSV of flat bars on the given days of January 2024, closing at 100 + day."""
    rows = [f"2024-01-{d:02d},{100 + d},{100 + d},{100 + d},{100 + d},1" for d in days]
    (folder / f"{stem}.csv").write_text(HEADER + "\n".join(rows) + "\n")


def make_feed(folder, start: date | None = None) -> ReplayFeed:
    write(folder, "A", [1, 2, 3, 4, 5, 8])
    write(folder, "B", [2, 4, 5, 6, 7, 8])
    symbols = [SymbolConfig(id=s, feed="replay", csv=s, asset_class="crypto") for s in "AB"]
    return ReplayFeed("replay", ReplaySettings(path=str(folder), start=start), symbols)


def served_days(result) -> dict[str, list[int]]:
    return {s: [b.time.day for b in bars] for s, bars in result.bars.items()}


def test_each_poll_serves_the_next_market_day_of_every_symbol_that_has_one(tmp_path):
    """Polled from what it served, the feed steps through the union of the days, then is exhausted."""
    feed = make_feed(tmp_path, start=date(2024, 1, 3))

    async def replay() -> list[dict[str, list[int]]]:
        latest: dict = {"A": None, "B": None}
        polls = []
        while not feed.exhausted:
            result = await feed.fetch(["A", "B"], latest, feed.clock())
            latest.update({s: bars[-1].time for s, bars in result.bars.items()})
            polls.append(served_days(result))
        return polls

    # The first poll serves the history before the start at once.
    assert asyncio.run(replay()) == [{"A": [1, 2], "B": [2]}, {"A": [3]}, {"A": [4], "B": [4]},
                                     {"A": [5], "B": [5]}, {"B": [6]}, {"B": [7]}, {"A": [8], "B": [8]}]


def test_a_poll_from_another_bar_than_the_last_served_gets_every_bar_after_it(tmp_path):
    """A poll asking from an earlier bar (or none) is served again from there; from a later one, only what follows."""
    feed = make_feed(tmp_path)

    async def polls() -> list[dict[str, list[int]]]:
        first = await feed.fetch(["A", "B"], {}, feed.clock())  # day 1
        second = await feed.fetch(["A", "B"], {"A": first.bars["A"][-1].time}, feed.clock())  # day 2
        third = await feed.fetch(["A", "B"], {}, feed.clock())  # day 3, asked from nothing
        stored = third.bars["A"][0].time  # as if the store held A's day 1 only
        fourth = await feed.fetch(["A", "B"], {"A": stored, "B": third.bars["B"][-1].time}, feed.clock())  # day 4
        return [served_days(r) for r in (first, second, third, fourth)]

    assert asyncio.run(polls()) == [{"A": [1]}, {"A": [2], "B": [2]}, {"A": [1, 2, 3], "B": [2]},
                                    {"A": [2, 3, 4], "B": [4]}]


def test_a_feed_result_is_a_frozen_record_with_fresh_empty_defaults():
    import dataclasses

    from bot.feeds.base import FeedResult

    empty, other = FeedResult(), FeedResult()
    assert empty.bars == empty.errors == empty.truncated_since == {}
    assert empty.bars is not other.bars and empty.errors is not other.errors  # never one shared dict
    result = FeedResult(bars={"BTC": []}, errors={"ETH": "down"})
    assert result == FeedResult({"BTC": []}, {"ETH": "down"}, {})
    assert dataclasses.replace(result, errors={}) == FeedResult(bars={"BTC": []})
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.bars = {}  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(FeedResult)] == ["bars", "errors", "truncated_since"]
