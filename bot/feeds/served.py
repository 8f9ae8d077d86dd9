"""The bars a replay has served so far, read as the store's bars table is (a replay's composites read them)."""

from __future__ import annotations

import bisect
from datetime import datetime
from typing import Any, Collection, Iterable

from alerts.bars import Bar


class ServedBars:
    """The final bars handed to the engine so far (and those stored before), read as the store's bars table is.

    A composite reads its members' bars here during a replay: the same answers as the store gives once a
    batch is committed, without a query per member per day.
    """

    def __init__(self, store: Any, symbols: Collection[str] | None = None) -> None:
        # symbols: those whose bars are held (default: all); others are read from the store, as committed.
        self.store = store
        self.symbols = None if symbols is None else frozenset(symbols)
        self._bars: dict[str, list[Bar]] = {}
        self._times: dict[str, list[datetime]] = {}

    def _of(self, symbol: str) -> tuple[list[Bar], list[datetime]]:
        if symbol not in self._bars:
            stored = self.store.load_bars(symbol)  # a replay resumed on a database that holds history
            self._bars[symbol], self._times[symbol] = stored, [b.time for b in stored]
        return self._bars[symbol], self._times[symbol]

    def _held(self, symbol: str) -> bool:
        return self.symbols is None or symbol in self.symbols

    def add(self, symbol: str, bars: Iterable[Bar]) -> None:
        """Remember the final bars newer than the newest held, as the engine keeps them."""
        times = self._times.get(symbol)  # held and read before: the usual case, asked once per symbol per day
        if times is None:
            if not self._held(symbol):
                return
            times = self._of(symbol)[1]
        held = self._bars[symbol]
        for bar in bars:
            if bar.final and (not times or bar.time > times[-1]):
                held.append(bar)
                times.append(bar.time)

    def last_bar_time(self, symbol: str, interval: str = "1d") -> datetime | None:
        """Return the time of the newest bar held for a symbol."""
        times = self._times.get(symbol)
        if times is None:
            if not self._held(symbol):
                return self.store.last_bar_time(symbol, interval)
            times = self._of(symbol)[1]
        return times[-1] if times else None

    def load_bars(self, symbol: str, interval: str = "1d", since: datetime | None = None) -> list[Bar]:
        """Return the bars held for a symbol from `since` on, oldest first."""
        times = self._times.get(symbol)
        if times is None:
            if not self._held(symbol):
                return self.store.load_bars(symbol, interval, since=since)
            times = self._of(symbol)[1]
        held = self._bars[symbol]
        return held[bisect.bisect_left(times, since):] if since is not None else list(held)
