"""The replay feed: a folder of daily CSVs served one market day per poll, as if live."""

from __future__ import annotations

import bisect
import logging
import operator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from alerts.bars import Bar
from bot.feeds.base import FeedResult
from bot.feeds.history import (  # ReplayError and the CSV reader live with the history they read
    DEFAULT_STITCH_TOLERANCE_PCT,
    ReplayError,
    collector_held,
    load_symbol_history,
    read_daily_csv_lines,
)

log = logging.getLogger(__name__)

ONE_DAY = timedelta(days=1)


class ReplaySettings(BaseModel):
    """Settings of a replay feed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str = Field(description="folder of daily CSVs: date,open,high,low,close,volume; file stem = symbol's csv name")
    start: date | None = Field(None, description="replay from this date; earlier bars are history (silent backfill)")
    end: date | None = Field(None, description="stop after this date")
    stitch_tolerance_pct: float = Field(
        DEFAULT_STITCH_TOLERANCE_PCT, gt=0, le=100,
        description="a symbol with several CSV sources: closes on their common days must agree within this %; "
        "each disagreement is logged as a data problem (the later source is kept)")
    spike_pct: dict[str, float] = Field(
        default_factory=dict, description="per asset class: a one-bar move above this % that reverts is dropped "
        "as a bad print, as in the live feeds (defaults: index 12, etf 15, crypto 40, composite 30)")


def read_daily_csv(path: Path) -> tuple[list[Bar], list[str]]:
    """Read a daily OHLCV CSV into bars, returning the bad rows as messages instead of raising."""
    bars, problems, _ = read_daily_csv_lines(path)
    return bars, problems


class ReplayFeed:
    """Serve history from CSV files one market day per fetch; its clock is the day being replayed."""

    def __init__(self, name: str, settings: ReplaySettings, symbols: Sequence[Any]) -> None:
        self.name = name
        self.settings = settings
        self._symbols = list(symbols)
        self._bars: dict[str, list[Bar]] = {}
        self.truncated_since: dict[str, datetime] = {}
        self._times: dict[str, list[datetime]] = {}
        self._days: list[datetime] = []
        self._cursor = -1  # index into _days of the last day served
        self._served_close = datetime.min  # the close of that day (set with the cursor)
        self._arrivals: list[dict[str, int]] = []  # per day: the symbols with a bar that day, and its index
        self._newest: dict[str, datetime] = {}  # per symbol: its newest bar on or before the last day served
        self._asks: dict[tuple[str, ...], tuple[frozenset[str], dict[str, datetime]]] = {}  # see _asked
        self.loaded = False
        self.problems: list[str] = []

    def load(self) -> None:
        """Read every symbol's history (once): its CSVs stitched and screened; a missing file is reported."""
        if self.loaded:
            return
        folder = Path(self.settings.path)
        if not folder.is_dir():
            raise ReplayError(f"replay folder {folder} does not exist")
        with collector_held():
            self._load(folder)
        self.loaded = True
        for problem in self.problems:
            log.warning("replay %s: %s", self.name, problem)

    def _load(self, folder: Path) -> None:
        """Read every symbol's history and index the market days it covers."""
        days: set[datetime] = set()
        for config in self._symbols:
            history = load_symbol_history(folder, config, self.settings.spike_pct, self.settings.stitch_tolerance_pct)
            self.problems.extend(history.problems)
            if not history.bars:
                continue
            symbol = config.id
            self._bars[symbol] = history.bars
            self._times[symbol] = [b.time for b in history.bars]
            if history.truncated_since is not None:
                self.truncated_since[symbol] = history.truncated_since
            days.update(self._times[symbol])
        start = _utc(self.settings.start)
        end = _utc(self.settings.end)
        ordered = sorted(d for d in days if end is None or d <= end)
        first_live = bisect.bisect_left(ordered, start) if start else 0
        # The first fetch serves everything before `start` at once: that is history, not news.
        self._days = ordered
        self._first_live = min(first_live, len(ordered))
        arrivals: list[dict[str, int]] = [{} for _ in ordered]
        at = {day: index for index, day in enumerate(ordered)}.get
        for symbol, times in self._times.items():
            for index, day in enumerate(map(at, times)):
                if day is not None:  # not after `end`
                    arrivals[day][symbol] = index
        self._arrivals = arrivals

    def closes(self, symbol: str) -> dict[date, float]:
        """Return a symbol's daily closes over the whole replayed history (the NAV stand-in for flows)."""
        self.load()
        return {b.time.date(): b.close for b in self._bars.get(symbol, ())}

    @property
    def last_day_served(self) -> date | None:
        """Return the market day served last (None before the first)."""
        return self._days[self._cursor].date() if self._cursor >= 0 else None

    @property
    def exhausted(self) -> bool:
        """Say whether every day has been served."""
        return self.loaded and self._cursor >= len(self._days) - 1

    @property
    def days(self) -> tuple[datetime, ...]:
        """Return every market day the replay covers, oldest first."""
        self.load()
        return tuple(self._days)

    @property
    def day_count(self) -> int:
        """Return how many market days the replay covers."""
        self.load()
        return len(self._days)

    def span_problem(self, start: date | None, end: date | None) -> str:
        """Say why the files, or a --from/--to, leave no day to replay as news; '' when some day is news."""
        self.load()
        if not self._bars:
            return "no CSV file matches a configured symbol"
        if not self._days:
            first = min(bars[0].time.date() for bars in self._bars.values())
            return f"--to {end} is before the data's first day {first}"
        last = self._days[-1].date()
        if start is not None and start > last:
            return f"--from {start} is after the data's last day {last}: no day would count as news"
        return ""

    def clock(self) -> datetime:
        """Return the replay's 'now': the close of the day last served (the start, before any)."""
        if self._cursor >= 0:  # asked before every poll: kept when the day moves
            return self._served_close
        self.load()
        start = self._days[self._first_live] if self._first_live < len(self._days) else None
        return start or datetime.now(timezone.utc)

    def live_since(self) -> datetime:
        """Return when news starts: bars closing before this are history."""
        self.load()
        if self._first_live < len(self._days):
            return self._days[self._first_live]
        return self._days[-1] + timedelta(days=1) if self._days else datetime.now(timezone.utc)

    async def fetch(self, symbols: Sequence[str], since: Mapping[str, datetime | None], now: datetime) -> FeedResult:
        """Advance one market day (the first call also serves the history before the start) and return its bars."""
        if not self.loaded:
            self.load()
        cursor = self._cursor
        if cursor >= len(self._days) - 1:  # exhausted
            return FeedResult()
        first = cursor < 0
        cursor = self._first_live - 1 if first and self._first_live > 0 else cursor + 1
        self._cursor = cursor
        upto = self._days[cursor]
        self._served_close = upto + ONE_DAY
        newest = self._newest
        asked, truncated = self._asked(symbols)
        # A poll asking from each symbol's newest bar before this day (as a replay's polls do) gets this day's bars
        # alone: no search. Any other poll searches each symbol's bars.
        if not first and all(map(operator.eq, map(since.get, symbols), map(newest.get, symbols))):
            bars = self._bars
            out = {s: bars[s][i:i + 1] for s, i in self._arrivals[cursor].items() if s in asked}
        else:
            out = self._search(symbols, since, upto)
        if first:
            for symbol, times in self._times.items():
                hi = bisect.bisect_right(times, upto)
                if hi:
                    newest[symbol] = times[hi - 1]
        else:
            newest.update(dict.fromkeys(self._arrivals[cursor], upto))  # a bar served this day is this day's
        return FeedResult(bars=out, truncated_since=dict(truncated))

    def _asked(self, symbols: Sequence[str]) -> tuple[frozenset[str], dict[str, datetime]]:
        """Return the asked symbols as a set, and where those of them known to be truncated start (kept per ask)."""
        key = tuple(symbols)
        asked = self._asks.get(key)
        if asked is None:
            wanted = frozenset(key)
            asked = self._asks[key] = (wanted, {s: t for s, t in self.truncated_since.items() if s in wanted})
        return asked

    def _search(self, symbols: Sequence[str], since: Mapping[str, datetime | None], upto: datetime,
                ) -> dict[str, list[Bar]]:
        """Return each symbol's bars after `since[symbol]` up to `upto`."""
        out: dict[str, list[Bar]] = {}
        for symbol in symbols:
            times = self._times.get(symbol)
            if not times:
                continue
            after = since.get(symbol)
            lo = bisect.bisect_right(times, after) if after else 0
            hi = bisect.bisect_right(times, upto)
            if hi > lo:
                out[symbol] = self._bars[symbol][lo:hi]
        return out

    async def close(self) -> None:
        """Release nothing: the files are read once."""


def _utc(day: date | None) -> datetime | None:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) if day else None
