"""The bars a replay has served, read back by its composites as the store's bars table would answer."""

from __future__ import annotations

from alerts.bars import Bar, utc
from bot.feeds.served import ServedBars


def bar(day: int, close: float, final: bool = True) -> Bar:
    return Bar(utc(2024, 1, day), close, close, close, close, 1.0, "1d", final)


def test_held_symbols_answer_from_what_was_served_the_others_from_the_store(store):
    """A held symbol starts from its stored bars and adds the served finals; another is the store's own."""
    store.upsert_bars("SOL", [bar(1, 10.0)])
    store.upsert_bars("BTC", [bar(1, 100.0)])
    served = ServedBars(store, {"SOL"})
    served.add("SOL", [bar(2, 11.0), bar(3, 12.0, final=False)])
    served.add("BTC", [bar(2, 101.0)])  # not held: the store (once the batch is committed) answers for it
    assert [(b.time.day, b.close) for b in served.load_bars("SOL")] == [(1, 10.0), (2, 11.0)]
    assert [b.time.day for b in served.load_bars("SOL", since=utc(2024, 1, 2))] == [2]
    assert served.last_bar_time("SOL") == utc(2024, 1, 2)
    assert [(b.time.day, b.close) for b in served.load_bars("BTC")] == [(1, 100.0)]
    assert served.last_bar_time("BTC") == utc(2024, 1, 1)
    store.upsert_bars("BTC", [bar(2, 101.0)])
    assert served.last_bar_time("BTC") == utc(2024, 1, 2)
