"""Data quality shared by every feed and by CSV history: bad bars dropped, spikes held back, stale symbols, backoff."""

from __future__ import annotations

import logging
import operator
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Iterable, Mapping, Sequence

from alerts.bars import Bar, bar_problem
from bot.backoff import backoff_seconds

log = logging.getLogger("riskon.feeds.quality")

# A clock skew we tolerate before calling a bar "from the future".
FUTURE_SKEW = timedelta(minutes=5)
_FINAL, _TIME = operator.attrgetter("final"), operator.attrgetter("time")


@dataclass(frozen=True)
class Screened:
    """Bars that passed the checks, and those dropped or held back, each with the reason."""

    kept: tuple[Bar, ...]
    dropped: tuple[tuple[Bar, str], ...] = ()
    held: tuple[tuple[Bar, str], ...] = ()


def _move_pct(price: float, reference: float) -> float:
    return (price / reference - 1.0) * 100.0


def screen_bars(
    symbol: str,
    bars: Iterable[Bar],
    now: datetime,
    previous: Bar | None = None,
    spike_pct: float = 20.0,
    feed: str = "",
    where: Mapping[datetime, str] | None = None,
    prices_checked: bool = False,
) -> Screened:
    """Drop impossible, future, out-of-order and reverting-spike bars; hold back a jump not yet confirmed.

    `previous` is the newest bar already stored for the symbol: bars older than it are dropped and its close is
    the reference for the first spike check. A final bar that jumps more than `spike_pct` is judged by the next
    final bar: if that one returns to within half the threshold of the price before the jump, the jump was a bad
    print and is dropped; if there is no next final bar yet, it is held back (not returned) until there is.
    `where` names each bar's origin (file:line of a CSV history) for the log. `prices_checked` says every bar
    already passed `bar_problem` (CSV history checks each row as it reads it).
    """
    latest = now + FUTURE_SKEW
    if type(bars) is list and len(bars) == 1:
        # A poll's one new final bar (a composite's day, most live polls): kept whole when nothing below would
        # drop or hold it; anything doubtful takes the full path.
        bar = bars[0]
        if (bar.final and (prices_checked or bar_problem(bar) is None) and bar.time <= latest
                and (previous is None or (bar.time >= previous.time
                                          and abs((bar.close / previous.close - 1.0) * 100.0) <= spike_pct))):
            return Screened((bar,))
    dropped: list[tuple[Bar, str]] = []
    held: list[tuple[Bar, str]] = []
    forming: list[Bar]
    if prices_checked and previous is None and type(bars) is list and _in_order_and_final(bars, latest):
        # CSV history: read oldest first, every row checked and final: nothing to drop, sort or set apart.
        finals, forming = bars, []
    else:
        finals, forming = _sort_out(bars, now, latest, previous, prices_checked, dropped)

    kept: list[Bar] = []
    reference = previous.close if previous is not None else None
    threshold = spike_pct
    last = len(finals) - 1
    for index, bar in enumerate(finals):
        # The move is computed as _move_pct does, inline: history screens tens of thousands of bars.
        if reference is not None and abs((bar.close / reference - 1.0) * 100.0) > threshold:
            move = _move_pct(bar.close, reference)
            if index == last:
                held.append((bar, f"close moved {move:+.1f}% in one bar (over {threshold:g}%): waiting for the "
                                  "next bar to confirm it"))
                continue
            following = finals[index + 1]
            if abs(_move_pct(following.close, reference)) <= threshold / 2:
                dropped.append((bar, f"one-bar spike of {move:+.1f}% that reverted on "
                                     f"{following.time.date().isoformat()}"))
                continue
        kept.append(bar)
        reference = bar.close

    if held:
        dropped_forming = [(b, "held back while an earlier jump awaits confirmation") for b in forming]
        held.extend(dropped_forming)
    else:
        for bar in forming:
            problem = _wick_problem(bar, reference, threshold)
            if reference is not None and not problem and abs(_move_pct(bar.close, reference)) > threshold:
                problem = (f"forming bar moved {_move_pct(bar.close, reference):+.1f}% (over {threshold:g}%): "
                           "not shown until it holds at the close")
            if problem:
                held.append((bar, problem))
            else:
                kept.append(bar)
    result = Screened(tuple(kept), tuple(dropped), tuple(held))
    log_screened(feed, symbol, result, where)
    return result


def _in_order_and_final(bars: list[Bar], latest: datetime) -> bool:
    """Say whether bars are all final, strictly oldest first, and none opens after `latest`."""
    if not bars or bars[-1].time > latest or not all(map(_FINAL, bars)):
        return False
    times = list(map(_TIME, bars))
    return all(map(operator.lt, times, islice(times, 1, None)))


def _sort_out(bars: Iterable[Bar], now: datetime, latest: datetime, previous: Bar | None, prices_checked: bool,
              dropped: list[tuple[Bar, str]]) -> tuple[list[Bar], list[Bar]]:
    """Drop impossible, future and too-old bars (into `dropped`); return the rest by time: final, then forming."""
    by_time: dict[datetime, Bar] = {}
    oldest = previous.time if previous is not None else None
    for bar in bars:
        problem = None if prices_checked else bar_problem(bar)
        if problem:
            dropped.append((bar, problem))
        elif bar.time > latest:
            dropped.append((bar, f"bar opens in the future ({bar.time.isoformat()} > now {now.isoformat()})"))
        elif oldest is not None and bar.time < oldest:
            dropped.append((bar, f"older than the newest stored bar ({oldest.date().isoformat()})"))
        else:
            by_time[bar.time] = bar  # a repeated time: the later copy is the source's correction
    ordered = [by_time[t] for t in sorted(by_time)]
    finals = [b for b in ordered if b.final]
    forming = [b for b in ordered if not b.final] if len(finals) < len(ordered) else []
    # A forming bar older than a final one is a leftover, not the current bar.
    if finals and forming:
        stale_forming = [b for b in forming if b.time <= finals[-1].time]
        dropped.extend((b, "forming bar not newer than the last final bar") for b in stale_forming)
        forming = [b for b in forming if b.time > finals[-1].time]
    return finals, forming


def _wick_problem(bar: Bar, reference: float | None, threshold: float) -> str | None:
    """Say whether a forming bar's high sticks out beyond the threshold above its open and the last close.

    Only forming bars are judged on their wick: final daily wicks of 50% are real (flash crashes of 2010-05-06
    and 2025-10-10), but an unconfirmed tick that high must not fire an intraday high alert.
    """
    body_high = max(bar.open, bar.close, reference or 0.0)
    if _move_pct(bar.high, body_high) > threshold:
        return f"high {bar.high:g} is {_move_pct(bar.high, body_high):.1f}% above open, close and previous close"
    return None


def log_screened(feed: str, symbol: str, screened: Screened, where: Mapping[datetime, str] | None = None) -> None:
    """Log every dropped or held bar with its reason (and its file:line when known)."""
    def origin(bar: Bar) -> str:
        return f" ({where[bar.time]})" if where and bar.time in where else ""

    for bar, reason in screened.dropped:
        log.warning("%s %s: dropped bar %s%s: %s", feed, symbol, bar.time.isoformat(), origin(bar), reason)
    for bar, reason in screened.held:
        log.info("%s %s: held back bar %s%s: %s", feed, symbol, bar.time.isoformat(), origin(bar), reason)


@dataclass(frozen=True)
class StaleMark:
    """Why a symbol's data is no longer trusted as current, and since when."""

    since: datetime
    why: str


@dataclass
class SymbolHealth:
    """What a feed knows about one symbol's updates."""

    last_ok_at: datetime | None = None
    last_bar_time: datetime | None = None
    failing_since: datetime | None = None
    last_error: str | None = None


class StaleTracker:
    """Remember each symbol's last good update and say which are stale."""

    def __init__(self, stale_after: timedelta, started_at: datetime | None = None) -> None:
        self.stale_after = stale_after
        self.started_at = started_at
        self.symbols: dict[str, SymbolHealth] = {}

    def _health(self, symbol: str) -> SymbolHealth:
        health = self.symbols.get(symbol)  # asked on every poll: a new SymbolHealth only for a new symbol
        if health is None:
            health = self.symbols[symbol] = SymbolHealth()
        return health

    def ok(self, symbol: str, now: datetime, bars: Sequence[Bar] = ()) -> None:
        """Record a good update (new bars, or an answer that nothing new is expected)."""
        health = self._health(symbol)
        health.last_ok_at = now
        health.failing_since = None
        health.last_error = None
        if bars:
            newest = max(b.time for b in bars)
            health.last_bar_time = max(newest, health.last_bar_time or newest)

    def failed(self, symbol: str, now: datetime, why: str) -> None:
        """Record a failed update and its reason."""
        health = self._health(symbol)
        if health.failing_since is None:
            health.failing_since = now
        health.last_error = why

    def stale(self, now: datetime) -> dict[str, StaleMark]:
        """Return the symbols without a good update for longer than the threshold."""
        marks = {}
        for symbol, health in self.symbols.items():
            since = health.last_ok_at or self.started_at or health.failing_since
            if since is None or now - since <= self.stale_after:
                continue
            why = health.last_error or "no good update"
            marks[symbol] = StaleMark(since, why)
        return marks


@dataclass
class Backoff:
    """Per-key exponential backoff with jitter, honouring a server's Retry-After."""

    base_seconds: float = 5.0
    max_seconds: float = 900.0
    rng: random.Random = field(default_factory=random.Random)
    failures: dict[str, int] = field(default_factory=dict)
    resume_at: dict[str, datetime] = field(default_factory=dict)

    def waiting(self, key: str, now: datetime) -> datetime | None:
        """Return when `key` may be tried again, or None if it may be tried now."""
        at = self.resume_at.get(key)
        return at if at is not None and at > now else None

    def failed(self, key: str, now: datetime, retry_after: float | None = None) -> datetime:
        """Record a failure; return when to try again (full jitter over the doubled delay)."""
        count = self.failures.get(key, 0) + 1
        self.failures[key] = count
        delay = backoff_seconds(count, self.base_seconds, self.max_seconds, self.rng)
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(float(retry_after), self.max_seconds))
        at = now + timedelta(seconds=delay)
        self.resume_at[key] = at
        return at

    def succeeded(self, key: str) -> None:
        """Forget past failures of `key`."""
        self.failures.pop(key, None)
        self.resume_at.pop(key, None)

    def why_waiting(self, key: str, now: datetime) -> str | None:
        """Say why `key` is not tried now, or None if it may be."""
        at = self.waiting(key, now)
        return f"backing off after errors until {at.isoformat(timespec='seconds')}" if at is not None else None


def symbols_to_poll(
    feed: str, symbols: Sequence[str], served: Mapping[str, str], backoff: Backoff, now: datetime
) -> tuple[list[str], dict[str, str]]:
    """Split the asked symbols into those to poll now and those that are not (with why)."""
    wanted, errors = [], {}
    for symbol in symbols:
        if symbol not in served:
            errors[symbol] = f"feed {feed} does not serve {symbol}"
        elif (why := backoff.why_waiting(symbol, now)) is not None:
            errors[symbol] = why
        else:
            wanted.append(symbol)
    return wanted, errors


def newest_stored(store, symbol: str, interval: str = "1d") -> Bar | None:
    """Return the newest bar of a symbol in the store, if any."""
    if store is None:
        return None
    last = store.last_bar_time(symbol, interval)
    if last is None:
        return None
    bars = store.load_bars(symbol, interval, since=last)
    return bars[-1] if bars else None


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Read a Retry-After header given in seconds (the form exchanges and Yahoo use)."""
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None
