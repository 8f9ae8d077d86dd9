"""composite: an index computed from other symbols' stored bars (e.g. ALTS = SOL, XRP, ADA, DOGE, BNB)."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone
from operator import attrgetter, mul, truediv
from typing import Any, Mapping, Sequence

from alerts.bars import Bar
from bot.feeds.base import FeedResult
from bot.feeds.quality import StaleMark, StaleTracker, newest_stored, screen_bars
from bot.feeds.settings import CompositeIndex, CompositeSettings

log = logging.getLogger("riskon.feeds.composite")
_OPEN, _CLOSE = attrgetter("open"), attrgetter("close")


def _stamp(day: date) -> datetime:
    return datetime.combine(day, time(0), timezone.utc)


def compute_index(index: CompositeIndex, bars_by_member: Mapping[str, Sequence[Bar]],
                  start: tuple[date, float] | None = None) -> tuple[list[Bar], date | None]:
    """Compute the index's daily bars over the dates every member has a final bar; return them and the base date.

    The index is rebalanced daily: its return from one common date to the next is the mean of the members'
    returns (equal), or their supply-weighted cap's return (supply). Without `start` the whole series is
    computed and scaled to `base_value` on the base date; with `start` = (date, index close stored for it),
    the series continues from there and only the later dates are returned (none yet while a member lags).
    """
    if start is not None and (following := _following_day(index, bars_by_member, start)) is not None:
        return following, start[0]
    # A bar's time is UTC (Bar checks it), so its date is its UTC day.
    by_day = {m: {b.time.date(): b for b in bars_by_member.get(m, ()) if b.final} for m in index.members}
    days = iter(by_day.values())
    common = sorted(set(next(days)).intersection(*days)) if by_day else []
    if start is not None:
        common = [d for d in common if d >= start[0]]
        if not common or common[0] != start[0]:
            return [], None  # the members no longer share the stored day: the caller recomputes it all
        base_day, levels = start[0], {start[0]: (start[1], start[1])}
    else:
        if not common:
            return [], None
        base_day = index.base_date if index.base_date is not None else common[0]
        if base_day not in common:
            return [], base_day
        levels = {common[0]: (1.0, 1.0)}
    rows = [by_day[m] for m in index.members]
    for before, day in zip(common, common[1:]):
        previous = levels[before][1]
        levels[day] = _levels(index, [row[before] for row in rows], [row[day] for row in rows], previous)
    if start is None:
        first = common[0]
        # The first day has no earlier close: its open is set against its own close, member by member.
        at_first = [row[first] for row in rows]
        levels[first] = (_levels(index, at_first, at_first, 1.0)[0], 1.0)
        scale = index.base_value / levels[base_day][1]
        levels = {d: (o * scale, c * scale) for d, (o, c) in levels.items()}
    out = []
    for day in common:
        if start is not None and day == start[0]:
            continue
        open_, close = levels[day]
        # Members peak at different hours, so their highs do not add up to the index's high: the only high
        # and low known for sure are the open and the close.
        out.append(Bar(_stamp(day), open_, max(open_, close), min(open_, close), close, 0.0, "1d", True))
    return out, base_day


def _following_day(index: CompositeIndex, bars_by_member: Mapping[str, Sequence[Bar]],
                   start: tuple[date, float]) -> list[Bar] | None:
    """Return the index's bar for the day after `start` when each member has just that day and the start's final
    bars (a live or replayed day's poll), as the whole computation would; None for any other case."""
    before, today, day = [], [], None
    for member in index.members:
        bars = bars_by_member.get(member, ())
        if len(bars) != 2 or not (bars[0].final and bars[1].final) or bars[0].time.date() != start[0]:
            return None
        if day is None:
            day = bars[1].time.date()
        elif bars[1].time.date() != day:
            return None
        before.append(bars[0])
        today.append(bars[1])
    if day is None or day <= start[0]:
        return None
    open_, close = _levels(index, before, today, start[1])
    return [Bar(_stamp(day), open_, max(open_, close), min(open_, close), close, 0.0, "1d", True)]


def _levels(index: CompositeIndex, before: Sequence[Bar], today: Sequence[Bar], level: float) -> tuple[float, float]:
    """Return the index's open and close today, from its `level` at the close before (members in index order)."""
    # Summed member by member in index order, as one generator would: the same figures to the bit, in C loops.
    if index.weighting == "supply":
        supply = [index.supply[m] for m in index.members]
        then = sum(map(mul, supply, map(_CLOSE, before)))
        return (level * (sum(map(mul, supply, map(_OPEN, today))) / then),
                level * (sum(map(mul, supply, map(_CLOSE, today))) / then))
    count = len(index.members)
    closes_before = list(map(_CLOSE, before))
    return (level * (sum(map(truediv, map(_OPEN, today), closes_before)) / count),
            level * (sum(map(truediv, map(_CLOSE, today), closes_before)) / count))


class CompositeFeed:
    """Recompute composite indexes from the members' bars in the store after their feeds have polled."""

    def __init__(self, name: str, settings: CompositeSettings, symbols: Sequence[Any] = (), store: Any = None) -> None:
        self.name = name
        self.settings = settings
        self.store = store
        # Where members' bars are read: the store, or (in a replay) the bars the replay has served so far, which
        # answer the same two questions without a query per member per day.
        self.bars: Any = store
        self.sources = {s.id: s.source_name for s in symbols if getattr(s, "feed", name) == name}
        self.tracker = StaleTracker(timedelta(seconds=settings.stale_after_seconds))

    def stale(self, now: datetime) -> dict[str, StaleMark]:
        """Return the indexes that stopped updating, with since-when and why."""
        return self.tracker.stale(now)

    async def fetch(self, symbols: Sequence[str], since: Mapping[str, datetime | None], now: datetime) -> FeedResult:
        """Compute each index's bars newer than `since`, as a feed's poll (nothing in it waits)."""
        return self.compute(symbols, since, now)

    def compute(self, symbols: Sequence[str], since: Mapping[str, datetime | None], now: datetime) -> FeedResult:
        """Compute each index's bars newer than `since`; an index waits while a member lags."""
        bars: dict[str, list[Bar]] = {}
        errors: dict[str, str] = {}
        for symbol in symbols:
            index = self.settings.indexes.get(self.sources.get(symbol, symbol))
            if index is None:
                errors[symbol] = f"feed {self.name} has no index '{self.sources.get(symbol, symbol)}' in its settings"
                continue
            if self.store is None:
                errors[symbol] = "a composite needs the bars store"
                continue
            last = since.get(symbol)
            # The index continues from its last stored close: later polls read only the members' new bars
            # (recomputing the whole history on every poll would make a replay quadratic).
            stored = newest_stored(self.bars, symbol) if last is not None else None
            start = (stored.time.date(), stored.close) if stored is not None and stored.time == last else None
            member_bars: dict[str, list[Bar]] = {}
            computed: list[Bar] = []
            base_day: date | None = None
            if start is not None:
                load_bars = self.bars.load_bars
                member_bars = {m: load_bars(m, since=last) for m in index.members}
                computed, base_day = compute_index(index, member_bars, start)
            continued = start is not None and base_day is not None  # nothing new is no error while a member lags
            if continued:
                empty = []
            else:
                last_bar_time = self.bars.last_bar_time
                empty = [m for m in index.members if last_bar_time(m) is None]
            if not continued and not empty:
                # First run, or the members no longer share the stored day: compute the whole series.
                member_bars = {m: self.bars.load_bars(m) for m in index.members}
                computed, base_day = compute_index(index, member_bars)
            if not computed and not continued:
                if base_day:
                    why = f"base date {base_day} is not a date every member has a bar for"
                elif empty:
                    why = f"waiting for its members' first bars ({', '.join(empty)})"
                else:
                    why = "its members have no date in common yet"
                errors[symbol] = why
                self.tracker.failed(symbol, now, why)
                continue
            fresh = [b for b in computed if last is None or b.time > last]
            # `stored` is the newest stored bar: nothing was written since it was read.
            screened = screen_bars(symbol, fresh, now, stored, self.settings.spike_threshold("composite"), self.name)
            if screened.kept:
                bars[symbol] = list(screened.kept)
            newest_member = max((bs[-1].time for bs in member_bars.values() if bs), default=None)
            newest_index = computed[-1].time if computed else (last or now)  # continued: the stored day
            if newest_member is not None and newest_member > newest_index:
                lagging = [m for m in index.members
                           if not member_bars.get(m) or member_bars[m][-1].time < newest_member]
                self.tracker.failed(symbol, now, f"waiting for {', '.join(lagging)} "
                                                 f"(index at {newest_index.date()}, members at {newest_member.date()})")
            else:
                self.tracker.ok(symbol, now, computed[-1:])
        return FeedResult(bars=bars, errors=errors)

    async def close(self) -> None:
        """Nothing to release: a composite reads the store only."""


def build(name: str, settings: CompositeSettings, symbols: Sequence[Any], store: Any) -> CompositeFeed:
    """Build a composite feed from its validated settings."""
    if isinstance(settings, Mapping):
        settings = CompositeSettings(**settings)
    return CompositeFeed(name, settings, symbols, store)
