"""A symbol's daily history from CSV files: several sources stitched, the main one last, screened like live.

`riskon replay` and `riskon backtest --data` both read history through `load_symbol_history`, so a
symbol's bars (which file serves which day, which bars are dropped as bad prints) are the same in both.
"""

from __future__ import annotations

import csv
import gc
import logging
import math
import operator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from itertools import compress, count, islice, repeat
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from alerts.bars import MAX_PRICE, Bar, bar_problem
from alerts.errors import RiskonError
from bot.feeds.quality import screen_bars
from bot.feeds.settings import DEFAULT_SPIKE_PCT

log = logging.getLogger("riskon.feeds.history")

# Screening history has no "now": every bar of a file is in the past.
FAR_FUTURE = datetime(9000, 1, 1, tzinfo=timezone.utc)
DEFAULT_STITCH_TOLERANCE_PCT = 5.0
SHOWN_DISAGREEMENTS = 3  # worst overlap days named in the problem line
_TIME = operator.attrgetter("time")


class ReplayError(RiskonError):
    """Signal that a replay folder or file cannot be used."""


@contextmanager
def collector_held() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector while history is built (then let it run as before).

    History is bars, lists and dicts, never reference cycles: the collector has nothing to free in it, yet the
    tens of thousands of new objects would make it walk them, and everything else alive, several times over.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def read_daily_csv_lines(path: Path) -> tuple[list[Bar], list[str], dict[datetime, int]]:
    """Read a daily OHLCV CSV into bars, the bad rows as messages, and each bar's line number in the file."""
    bars: list[Bar] = []
    problems: list[str] = []
    lines: dict[datetime, int] = {}
    # utf-8-sig: a file saved as "CSV UTF-8" by a spreadsheet starts with a byte-order mark, glued to "date".
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        # Names as a spreadsheet or Yahoo's download writes them ("Date,Open,...,Adj Close,Volume") are the same.
        header = [name.strip().lower() for name in next(reader, [])]
        missing = {"date", "open", "high", "low", "close"} - set(header)
        if missing:
            raise ReplayError(f"{path}: missing column(s) {', '.join(sorted(missing))} "
                              f"(its first line: {','.join(header)[:200] or 'empty'})")
        # Columns by name (the last of a repeated name, as csv.DictReader reads them); a short row's missing
        # fields read empty (an empty volume is 0, an empty price an unreadable row).
        column = {name: index for index, name in enumerate(header)}
        at_date, at_open, at_high, at_low, at_close = (column[name] for name in ("date", "open", "high", "low", "close"))
        at_volume = column.get("volume")
        width = len(header)
        previous: datetime | None = None
        line = 1
        midnights = _MIDNIGHTS
        top, inf = MAX_PRICE, math.inf
        below, above = 1 - 1e-9, 1 + 1e-9  # bar_problem's tolerance on high and low
        for row in reader:
            if not row:
                continue  # a blank line is no row (csv.DictReader skips it too)
            line += 1
            if len(row) < width:
                row = row + [""] * (width - len(row))
            day = row[at_date]
            try:
                moment = midnights.get(day)
                if moment is None:
                    moment = datetime.combine(date.fromisoformat(day.strip()[:10]), time(0), timezone.utc)
                    midnights[day] = moment
                o, h, low, c = float(row[at_open]), float(row[at_high]), float(row[at_low]), float(row[at_close])
                volume = float((row[at_volume] if at_volume is not None else "") or 0)
                bar = Bar(moment, o, h, low, c, volume)
            except (ValueError, TypeError, AttributeError) as exc:
                problems.append(f"{path.name}:{line}: unreadable row ({exc})")
                continue
            # bar_problem's usual case inline (float() gives floats): only a doubtful row pays for the full check.
            if not (0 < o <= top and 0 < h <= top and 0 < low <= top and 0 < c <= top and 0 <= volume < inf
                    and h >= o * below and h >= c * below and h >= low * below
                    and low <= o * above and low <= c * above):
                problem = bar_problem(bar)
                if problem:
                    problems.append(f"{path.name}:{line}: {problem}")
                    continue
            if previous is not None and moment <= previous:
                before = bars[-2].time if len(bars) > 1 else None
                if previous - moment <= FAR_AHEAD or (before is not None and moment <= before):
                    problems.append(f"{path.name}:{line}: date {moment.date()} is not after {previous.date()}")
                    continue
                # The row before is the odd one, dated far ahead (2204 typed for 2024): not every row after it.
                bars.pop()
                around = (f"the rows around it are {before.date()} and {moment.date()}" if before is not None
                          else f"the rows after it start at {moment.date()}")
                problems.append(f"{path.name}:{lines.pop(previous)}: date {previous.date()} is out of order: {around}")
            previous = moment
            bars.append(bar)
            lines[moment] = line
    return bars, problems, lines


# A row dated further ahead than this of the rows after it is taken for a typo (a month: no real daily file has
# such a gap that its next row then fills).
FAR_AHEAD = timedelta(days=31)
# Each date's text read once for every file: symbols share their market days (and one datetime per day).
_MIDNIGHTS: dict[str, datetime] = {}


@dataclass
class SymbolHistory:
    """One symbol's bars, oldest first, where each came from, and what was wrong with the input."""

    symbol: str
    bars: list[Bar] = field(default_factory=list)
    # Data problems, each naming file:line: bad rows, spikes dropped, sources disagreeing on their overlap.
    problems: list[str] = field(default_factory=list)
    # Set when the history is known to start after the asset began trading (`listed:` before the first bar):
    # its highs are "the highest since" this day, never "all-time".
    truncated_since: datetime | None = None
    # (file name, first day, last day) each source serves in the stitched history, oldest first.
    spans: list[tuple[str, date, date]] = field(default_factory=list)


def csv_stems(symbol: Any) -> list[str]:
    """Return a symbol's CSV file stems, oldest source first (its `csv` is one stem or a list)."""
    stems = getattr(symbol, "csv_stems", None)
    if stems is not None:
        return list(stems)
    return [symbol.csv_stem]


def load_symbol_history(
    folder: str | Path,
    symbol: Any,
    spike_pct: Mapping[str, float] | None = None,
    tolerance_pct: float = DEFAULT_STITCH_TOLERANCE_PCT,
) -> SymbolHistory:
    """Read, stitch and screen one configured symbol's CSV history from a folder.

    `symbol` is a `SymbolConfig` (id, csv stems, asset_class, listed). The last-listed source is the main one
    (the source live polling continues): it wins wherever it has bars. Each earlier source only fills the days
    before or after the span of those listed after it (BTC: CryptoCompare from 2010, then Yahoo from 2014;
    XRP: Yahoo, then Binance after Yahoo's file ends). Their closes on common days must
    agree within `tolerance_pct`: each disagreement is reported as a data problem, never averaged away.
    The stitched bars then go through the live feeds' screening (`quality.screen_bars`): a one-bar spike that
    reverts is dropped and reported with its file and line.
    Raises ReplayError when a file exists but cannot be read at all (missing columns).
    """
    with collector_held():
        return _load_symbol_history(Path(folder), symbol, spike_pct, tolerance_pct)


def _load_symbol_history(folder: Path, symbol: Any, spike_pct: Mapping[str, float] | None,
                         tolerance_pct: float) -> SymbolHistory:
    history = SymbolHistory(symbol.id)
    sources: list[tuple[str, list[Bar], dict[datetime, int]]] = []
    for stem in csv_stems(symbol):
        path = folder / f"{stem}.csv"
        if not path.exists():
            history.problems.append(f"{symbol.id}: no file {path.name} in {folder}")
            continue
        bars, problems, lines = read_daily_csv_lines(path)
        history.problems.extend(f"{symbol.id}: {p}" for p in problems)
        if bars:
            sources.append((path.name, bars, lines))
    if not sources:
        return history
    stitched, where = _stitch(symbol.id, sources, tolerance_pct, history)
    classes = {**DEFAULT_SPIKE_PCT, **(spike_pct or {})}
    threshold = float(classes.get(getattr(symbol, "asset_class", "index"), 20.0))
    screened = screen_bars(symbol.id, stitched, FAR_FUTURE, None, threshold, "history", where=where,
                           prices_checked=True)
    for bar, reason in (*screened.dropped, *screened.held):
        history.problems.append(f"{symbol.id}: {where.get(bar.time, '?')}: bar {bar.time.date()} left out: {reason}")
    history.bars = list(screened.kept)
    history.spans = _spans(history.bars, where)
    listed = getattr(symbol, "listed", None)
    if listed is not None and history.bars and history.bars[0].time.date() > listed:
        history.truncated_since = history.bars[0].time
    return history


class _Origins(Mapping[datetime, str]):
    """Each stitched bar's file:line, written out only when a message names it (most bars are never named)."""

    def __init__(self) -> None:
        self.files: dict[datetime, str] = {}  # bar time -> file name
        self.lines: dict[str, Mapping[datetime, int]] = {}  # file name -> its line numbers by bar time

    def add(self, name: str, lines: Mapping[datetime, int]) -> None:
        self.lines[name] = lines

    def __getitem__(self, moment: datetime) -> str:
        name = self.files[moment]
        return f"{name}:{self.lines[name][moment]}"

    def __contains__(self, moment: object) -> bool:
        return moment in self.files

    def __iter__(self) -> Iterator[datetime]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)


def _stitch(symbol: str, sources: Sequence[tuple[str, list[Bar], dict[datetime, int]]], tolerance_pct: float,
            history: SymbolHistory) -> tuple[list[Bar], _Origins]:
    """Merge sources, later-listed first wins; return the bars and each bar's file:line."""
    name, bars, lines = sources[-1]
    merged = {b.time: b for b in bars}
    where = _Origins()
    where.add(name, lines)
    where.files = dict.fromkeys(lines, name)
    for name, bars, lines in reversed(sources[:-1]):
        where.add(name, lines)
        first, last = min(merged), max(merged)
        disagree: list[tuple[float, Bar, str]] = []
        common = 0
        for bar in bars:
            if first <= bar.time <= last:
                kept = merged.get(bar.time)
                if kept is not None:
                    common += 1
                    gap = abs(bar.close / kept.close - 1) * 100
                    if gap > tolerance_pct:
                        # Named now: this source's own bars outside the span are added below, never these.
                        disagree.append((gap, bar, where[bar.time]))
                continue
            merged[bar.time] = bar
            where.files[bar.time] = name
        if disagree:
            worst = sorted(disagree, key=lambda item: -item[0])[:SHOWN_DISAGREEMENTS]
            shown = "; ".join(f"{b.time.date()} {gap:.1f}% ({name}:{lines[b.time]} vs {other})"
                              for gap, b, other in worst)
            history.problems.append(
                f"{symbol}: {name} disagrees with the later source by more than {tolerance_pct:g}% on "
                f"{len(disagree)} of {common} common days (the later source is kept): {shown}")
    return [merged[t] for t in sorted(merged)], where


def _spans(bars: Sequence[Bar], where: _Origins) -> list[tuple[str, date, date]]:
    """Return the runs of consecutive bars served by the same file."""
    times = list(map(_TIME, bars))
    served_by = list(map(where.files.get, times, repeat("?")))
    # Where the serving file changes, found in one pass over tens of thousands of bars.
    cuts = [0, *compress(count(1), map(operator.ne, islice(served_by, 1, None), served_by)), len(times)]
    return [(served_by[first], times[first].date(), times[end - 1].date()) for first, end in zip(cuts, cuts[1:])
            if end > first]
