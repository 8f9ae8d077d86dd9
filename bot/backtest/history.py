"""Load a backtest's history: daily bars per symbol from CSV files or through the configured feeds."""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from alerts.bars import Bar
from alerts.errors import RiskonError
from bot.config import Config

log = logging.getLogger(__name__)

LIVE_FETCH_ROUNDS = 50  # a live feed serves its whole history in a few pages; more rounds means it is stuck


class BacktestError(RiskonError):
    """Signal that a backtest cannot run (no data, no rules, bad options)."""


# --- history ---------------------------------------------------------------------------------------


@dataclass(repr=False)
class History:
    """Final daily bars per symbol, and what was wrong with the input (each problem named)."""

    bars: dict[str, list[Bar]]
    problems: list[str] = field(default_factory=list)
    source: str = ""
    flows: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)  # fund -> (day, net flow USD)
    # symbol -> first day of a history known to start late (`listed:` before it): "highest since", not all-time
    truncated_since: dict[str, datetime] = field(default_factory=dict)

    def __repr__(self) -> str:
        # Short: asyncio.run writes out its result's repr twice as it ends (a live fetch returns a History), and
        # every bar written out cost ~0.2 s each time.
        bars = sum(len(b) for b in self.bars.values())
        return (f"History({len(self.bars)} symbols, {bars:,} bars, {len(self.flows)} funds' flows, "
                f"{len(self.problems)} problems, from {self.source or 'nowhere'})")


def _cut(bars: Sequence[Bar], end: date | None) -> list[Bar]:
    if end is None:
        return [b for b in bars if b.final]
    limit = datetime(end.year, end.month, end.day, tzinfo=timezone.utc) + timedelta(days=1)
    return [b for b in bars if b.final and b.time < limit]


def load_csv_history(config: Config, folder: str | Path, end: date | None = None) -> History:
    """Read each configured symbol's CSV (file stem = its `csv` name) from a folder, up to `end`."""
    from bot.feeds.flow_history import load_flow_history
    from bot.feeds.fragility_history import is_fragility_csv, series_bars
    from bot.feeds.history import load_symbol_history
    from bot.feeds.replay import ReplayError

    folder = Path(folder)
    if not folder.is_dir():
        raise BacktestError(f"--data {folder}: no such folder")
    history = History({}, source=str(folder))
    computed = composite_feeds(config)
    for symbol in config.symbols:
        if symbol.feed in computed:
            continue  # an index made from other symbols: its own feed computes it as the rules run, as live
        path = folder / f"{symbol.csv_stem}.csv"
        if not path.exists():
            history.problems.append(f"{symbol.id}: no file {path.name} in {folder}; left out of the backtest")
            continue
        try:
            if symbol.asset_class == "breadth" and is_fragility_csv(path):  # date,unprofitable_pct_count,...
                bars, problems = series_bars(path, symbol.id)
            else:  # the replay feed's own reading: sources stitched, spikes screened (bot/feeds/history.py)
                read = load_symbol_history(folder, symbol)
                bars, problems = read.bars, [p.removeprefix(f"{symbol.id}: ") for p in read.problems]
                if read.truncated_since is not None:
                    history.truncated_since[symbol.id] = read.truncated_since
        except (ReplayError, OSError, UnicodeDecodeError, csv.Error) as exc:
            history.problems.append(f"{symbol.id}: {exc}; left out of the backtest")
            continue
        history.problems.extend(f"{symbol.id}: {p} (row skipped)" for p in problems[:20])
        if len(problems) > 20:
            history.problems.append(f"{symbol.id}: {len(problems) - 20} more bad rows skipped")
        bars = _cut(bars, end)
        if bars:
            history.bars[symbol.id] = bars
        else:
            history.problems.append(f"{symbol.id}: {path.name} has no usable rows" + (f" up to {end}" if end else ""))
    # Fund flows from the data folder's shares files, derived as `riskon replay` does.
    flows = load_flow_history(folder, config.feeds,
                              lambda fund: {b.time.date(): b.close for b in history.bars.get(fund, ())})
    limit = datetime(end.year, end.month, end.day, tzinfo=timezone.utc) + timedelta(days=1) if end else None
    for fund in flows.flows:
        history.flows[fund] = [(t, f) for t, f in flows.series(fund) if limit is None or t < limit]
    history.problems.extend(flows.problems)
    return history


def composite_feeds(config: Config) -> set[str]:
    """Return the names of the feeds that compute an index from other symbols."""
    return {name for name, feed in config.feeds.items() if feed.kind == "composite"}


async def fetch_live_history(config: Config, cache_path: str | Path, end: date | None = None,
                             now: datetime | None = None) -> History:
    """Fetch every symbol's history through its configured feeds into a bars cache, then read it back."""
    from bot.feeds import FEEDS
    from storage import Store

    now = now or datetime.now(timezone.utc)
    cache = Store.open(cache_path)
    history = History({}, source=f"live feeds, cached in {cache_path}")
    try:
        for name, feed_config in config.feeds.items():
            served = [s for s in config.symbols if s.feed == name or s.history_feed == name]
            if not served:
                continue
            kind = FEEDS.get(feed_config.kind)
            if kind is None:
                history.problems.append(f"feed {name}: unknown kind {feed_config.kind!r}")
                continue
            try:
                feed = kind.build(name, kind.Settings(**feed_config.settings), served, cache)
            except Exception as exc:  # one feed that cannot be built never stops the others
                history.problems.append(f"feed {name}: cannot be set up: {exc}")
                continue
            try:
                if hasattr(feed, "import_history"):  # fragility: its history is what was imported; no live snapshot
                    for symbol, bars in (await feed.import_history(now)).items():
                        cache.upsert_bars(symbol, bars)
                    continue
                await _drain_feed(feed, [s.id for s in served], cache, now, history)
            finally:
                try:
                    await feed.close()
                except Exception as exc:
                    log.warning("feed %s did not close cleanly: %s", name, exc)
        midnight = utc_day(end)
        limit = midnight + timedelta(days=1) if midnight else None
        for symbol in config.symbols:
            bars = _cut(cache.load_bars(symbol.id), end)
            flows = [(t, f) for t, f in cache.load_flows(symbol.id) if limit is None or t < limit]
            if flows:
                history.flows[symbol.id] = flows
            if bars:
                history.bars[symbol.id] = bars
            else:
                history.problems.append(f"{symbol.id}: no history from feed {symbol.feed}; left out of the backtest")
    finally:
        cache.close()
    return history


async def _drain_feed(feed: Any, symbols: list[str], cache: Any, now: datetime, history: History) -> None:
    """Poll a feed until it has served everything it has (a replay feed serves a day per poll)."""
    rounds = 0
    limit = LIVE_FETCH_ROUNDS
    if hasattr(feed, "exhausted") and hasattr(feed, "day_count"):
        limit = feed.day_count + 2  # one market day per fetch
    while rounds < limit:
        rounds += 1
        since = {s: cache.last_bar_time(s) for s in symbols}
        try:
            result = await feed.fetch(symbols, since, now)
        except Exception as exc:
            history.problems.append(f"feed {feed.name}: {type(exc).__name__}: {exc}")
            return
        for symbol, error in result.errors.items():
            history.problems.append(f"{symbol}: feed {feed.name}: {error}")
        for symbol, started in result.truncated_since.items():
            history.problems.append(f"{symbol}: feed {feed.name} serves history only since {started:%Y-%m-%d}; "
                                    "highs before it are unknown")
        new = sum(cache.upsert_bars(symbol, bars) for symbol, bars in result.bars.items())
        if getattr(feed, "exhausted", False) or (new == 0 and not hasattr(feed, "exhausted")):
            return




def utc_day(day: date | None) -> datetime | None:
    """Return midnight UTC of a day (None stays None)."""
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) if day else None
