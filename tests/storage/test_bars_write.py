"""A batch's bars, written a hundred to a statement, are stored exactly as written one by one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alerts.bars import Bar
from storage import Store

START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def bars(days: range, close: float, final: bool = True) -> list[Bar]:
    return [Bar(START + timedelta(days=d), close + d, close + d + 1, close + d - 1, close + d + 0.5, 1000.0 + d,
                final=final) for d in days]


def table(store: Store) -> list[tuple]:
    return store.db.conn.execute("select rowid, * from bars").fetchall()


@pytest.mark.parametrize("count", [1, 99, 100, 101, 257])
def test_a_batch_is_stored_as_its_bars_one_by_one(count):
    # Symbol A's list sends seven days twice (a later copy replaces the earlier, here inside one statement
    # once the batch is big enough), B's has a forming bar (not stored), and ^RUT runs past the batch's end.
    a_days = range(min(count, 150))
    batch = {
        "A": bars(a_days, 100.0) + bars(range(max(0, len(a_days) - 10), max(0, len(a_days) - 3)), 200.0),
        "B": bars(range(max(0, count - 157)), 50.0) + bars(range(count, count + 1), 60.0, final=False),
        "^RUT": bars(range(3), 2000.0),
    }
    together, one_by_one = Store.memory(), Store.memory()
    stored = together.upsert_bars_of(batch)
    for symbol, series in batch.items():
        for bar in series:
            one_by_one.upsert_bars(symbol, [bar])
    assert stored == sum(1 for series in batch.values() for bar in series if bar.final)
    assert table(together) == table(one_by_one)
    # Read back: each day once, its last copy, oldest first.
    last = {bar.time: bar for bar in batch["A"]}
    assert together.load_bars("A") == [last[t] for t in sorted(last)]
    # A second batch replaces what it sends again and adds the rest, in place.
    again = {"A": bars(range(5), 300.0), "C": bars(range(120), 10.0)}
    together.upsert_bars_of(again)
    for symbol, series in again.items():
        for bar in series:
            one_by_one.upsert_bars(symbol, [bar])
    assert table(together) == table(one_by_one)
