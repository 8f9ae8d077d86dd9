"""composite: an index computed from other symbols' stored bars (e.g. ALTS = SOL, XRP, ADA, DOGE, BNB)."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerts.bars import Bar
from bot.feeds.base import FeedResult
from bot.feeds.quality import FeedSettings, StaleMark, StaleTracker, newest_stored, screen_bars

log = logging.getLogger("riskon.feeds.composite")


class CompositeIndex(BaseModel):
    """How one composite index is made from its members."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    members: list[str] = Field(min_length=1, description="riskon symbol ids whose daily bars make the index")
    weighting: Literal["supply", "equal"] = Field(
        "equal", description="supply: members weighted by circulating supply (a market-cap index); equal: each "
        "member counts the same at the base date"
    )
    supply: dict[str, float] = Field(default_factory=dict, description="circulating supply per member (units)")
    base_date: date | None = Field(None, description="the index is base_value on this date (default: the first "
                                                     "date every member has a bar)")
    base_value: float = Field(100.0, gt=0, description="the index level at the base date")

    @model_validator(mode="after")
    def _validate_supply(self) -> CompositeIndex:
        if len(set(self.members)) != len(self.members):
            raise ValueError("a member is listed twice")
        if self.weighting == "supply":
            missing = [m for m in self.members if m not in self.supply]
            if missing:
                raise ValueError(f"weighting: supply needs a supply for every member; missing {', '.join(missing)}")
            bad = [m for m, v in self.supply.items() if not v > 0]
            if bad:
                raise ValueError(f"supply must be positive; check {', '.join(bad)}")
        unknown = [m for m in self.supply if m not in self.members]
        if unknown:
            raise ValueError(f"supply names symbols that are not members: {', '.join(unknown)}")
        return self


class CompositeSettings(FeedSettings):
    """Settings of a composite feed: its indexes, by the symbol's source name (default: its id)."""

    indexes: dict[str, CompositeIndex] = Field(default_factory=dict, description="index name -> its definition")


def _day(moment: datetime) -> date:
    return moment.astimezone(timezone.utc).date()


def _stamp(day: date) -> datetime:
    return datetime.combine(day, time(0), timezone.utc)


def compute_index(index: CompositeIndex, bars_by_member: Mapping[str, Sequence[Bar]]) -> tuple[list[Bar], date | None]:
    """Compute the index's daily bars over the dates every member has a final bar; return them and the base date."""
    by_day = {m: {_day(b.time): b for b in bars_by_member.get(m, ()) if b.final} for m in index.members}
    common = sorted(set.intersection(*(set(days) for days in by_day.values()))) if by_day else []
    if not common:
        return [], None
    base_day = index.base_date if index.base_date is not None else common[0]
    if base_day not in common:
        return [], base_day
    if index.weighting == "supply":
        level = sum(index.supply[m] * by_day[m][base_day].close for m in index.members)
        weights = {m: index.supply[m] * index.base_value / level for m in index.members}
    else:
        count = len(index.members)
        weights = {m: index.base_value / (count * by_day[m][base_day].close) for m in index.members}
    out = []
    for day in common:
        open_ = sum(weights[m] * by_day[m][day].open for m in index.members)
        close = sum(weights[m] * by_day[m][day].close for m in index.members)
        # Members peak at different hours, so the sum of their highs overstates the index's high: the
        # only high and low known for sure are the open and the close.
        out.append(Bar(_stamp(day), open_, max(open_, close), min(open_, close), close, 0.0, "1d", True))
    return out, base_day


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
        # The base date found on the first full computation of an index without one: pinned, so later polls
        # read only the members' new bars instead of their whole history (a replay would grow quadratically).
        self._found_base: dict[str, date] = {}
        self._base_bars: dict[tuple[str, date], list[Bar]] = {}
        self._pinned_indexes: dict[str, tuple[CompositeIndex, CompositeIndex]] = {}

    def stale(self, now: datetime) -> dict[str, StaleMark]:
        """Return the indexes that stopped updating, with since-when and why."""
        return self.tracker.stale(now)

    async def fetch(self, symbols: Sequence[str], since: Mapping[str, datetime | None], now: datetime) -> FeedResult:
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
            if index.base_date is None and last is not None and symbol in self._found_base:
                index = self._pinned(symbol, index)
            if last is None and any(self.bars.last_bar_time(m) is None for m in index.members):
                member_bars: dict[str, list[Bar]] = {}  # a member has no bar yet: no common date, nothing to read
            else:
                member_bars = self._member_bars(index, last)
            computed, base_day = compute_index(index, member_bars)
            if computed and base_day is not None:
                self._found_base.setdefault(symbol, base_day)
            if not computed:
                empty = [m for m in index.members if self.bars.last_bar_time(m) is None]
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
            previous = newest_stored(self.bars, symbol) if last is not None else None
            screened = screen_bars(symbol, fresh, now, previous, self.settings.spike_threshold("composite"), self.name)
            if screened.kept:
                bars[symbol] = list(screened.kept)
            newest_member = max((b.time for bs in member_bars.values() for b in bs[-1:]), default=None)
            newest_index = computed[-1].time
            if newest_member is not None and newest_member > newest_index:
                lagging = [m for m in index.members
                           if not member_bars.get(m) or member_bars[m][-1].time < newest_member]
                self.tracker.failed(symbol, now, f"waiting for {', '.join(lagging)} "
                                                 f"(index at {newest_index.date()}, members at {newest_member.date()})")
            else:
                self.tracker.ok(symbol, now, computed[-1:])
        return FeedResult(bars=bars, errors=errors)

    def _pinned(self, symbol: str, index: CompositeIndex) -> CompositeIndex:
        """Return the index with its found base date pinned (one copy, not one per poll)."""
        pinned = self._pinned_indexes.get(symbol)
        if pinned is None or pinned[0] is not index:
            pinned = self._pinned_indexes[symbol] = (index, index.model_copy(update={"base_date": self._found_base[symbol]}))
        return pinned[1]

    def _member_bars(self, index: CompositeIndex, last: datetime | None) -> dict[str, list[Bar]]:
        """Load members' bars: all of them on the first run, else the base date's and those after `last`."""
        if last is None or index.base_date is None:
            return {m: self.bars.load_bars(m) for m in index.members}
        out = {}
        for member in index.members:
            base = self._base_bars.get((member, index.base_date))
            if base is None:
                base = [b for b in self.bars.load_bars(member, since=_stamp(index.base_date))[:1]
                        if _day(b.time) == index.base_date]
                if base:  # a final bar of a past day does not change: read it once
                    self._base_bars[(member, index.base_date)] = base
            recent = self.bars.load_bars(member, since=last - timedelta(days=1))
            out[member] = base + [b for b in recent if not base or b.time > base[0].time]
        return out

    async def close(self) -> None:
        """Nothing to release: a composite reads the store only."""


def build(name: str, settings: CompositeSettings, symbols: Sequence[Any], store: Any) -> CompositeFeed:
    """Build a composite feed from its validated settings."""
    if isinstance(settings, Mapping):
        settings = CompositeSettings(**settings)
    return CompositeFeed(name, settings, symbols, store)
