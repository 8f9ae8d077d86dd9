"""fragility: the share of an iShares fund's members losing money (TTM net income), a weekly snapshot as a series.

Each fund's snapshot reads the members and weights from the iShares holdings file, then every member's trailing
twelve-month net income from Yahoo through yfinance, one request at a time at a polite pace. Every reading is
kept in SQLite with its fetch time, so a restart continues where it stopped. A finished snapshot becomes one bar
of `<FUND>:UNPROFITABLE` (percent of members, by count) and `<FUND>:UNPROFITABLE_WEIGHT` (percent of index weight).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from alerts.bars import Bar
from alerts.fragility import tally
from bot.feeds.base import FeedResult
from bot.feeds.holdings import Holdings, parse_ishares_holdings
from bot.feeds.ishares import download_ishares
from bot.feeds.libraries import load_library
from bot.feeds.net_income import Pace, RateLimited, TryLater, read_net_income
from bot.feeds.quality import Backoff, StaleMark, StaleTracker
from bot.feeds.sessions import FeedSessions
from bot.feeds.settings import ISHARES_DEFAULTS, FragilityFund, FragilitySettings

if TYPE_CHECKING:  # storage loads sqlite-utils, which loads pandas: not for check-config
    from storage.fragility import Snapshot
    from storage.thread import DatabaseThread

log = logging.getLogger("riskon.feeds.fragility")

COUNT_SUFFIX, WEIGHT_SUFFIX = ":UNPROFITABLE", ":UNPROFITABLE_WEIGHT"



def series_symbols(fund: str) -> tuple[str, str]:
    """Return the two series of a fund: unprofitable share by count, and by index weight."""
    return fund + COUNT_SUFFIX, fund + WEIGHT_SUFFIX


def snapshot_bars(snapshot: Snapshot) -> dict[str, list[Bar]]:
    """Turn a finished snapshot into one daily bar per series (value in percent, covered members as volume)."""
    stamp = datetime.combine(snapshot.day, time(0), timezone.utc)
    bars: dict[str, list[Bar]] = {}
    for symbol, value in zip(series_symbols(snapshot.fund),
                             (snapshot.unprofitable_pct_count, snapshot.unprofitable_pct_weight)):
        if value is not None:
            bars[symbol] = [Bar(stamp, value, value, value, value, float(snapshot.covered or 0))]
    return bars


def fresh_since(settings: FragilitySettings, snapshot: Snapshot) -> datetime:
    """Return the oldest fetch time a reading may have and still count in this snapshot.

    The interval less the budget: last week's readings (taken over the budget) are all renewed, while a
    restart or a retry after an incomplete snapshot reuses what this snapshot already read.
    """
    interval = timedelta(days=settings.snapshot_every_days)
    budget = timedelta(minutes=settings.time_budget_minutes)
    return snapshot.started_at - max(interval - budget, timedelta(0))


class FragilityFeed:
    """Take each fund's snapshot when due, a slice per poll, and hand back finished snapshots as bars."""

    def __init__(self, name: str, settings: FragilitySettings, symbols: Sequence[Any] = (), store: Any = None) -> None:
        self.name = name
        self.settings = settings
        self.store = store
        from storage.fragility import FragilityStore
        from storage.thread import DatabaseThread

        self.table = FragilityStore(store) if store is not None else None  # reads, on the loop's connection
        # Writes go where the runtime writes (use_database); inline on this store until it says so.
        self.database = DatabaseThread(store, threaded=False)
        self.writes = self.table
        self.backoff = Backoff(settings.backoff_base_seconds, settings.backoff_max_seconds)
        self.tracker = StaleTracker(timedelta(seconds=settings.stale_after_seconds))
        self.pace = Pace(settings.requests_per_second)
        self.members_read = 0
        # iShares' holdings file is large: three times a member request's limit to arrive
        self.sessions = FeedSessions("riskon (index fragility)", settings.timeout_seconds * 3,
                                     settings.yahoo_base_url)
        self._imported: set[str] = set()
        self._clock_base: tuple[datetime, float] | None = None  # the poll's `now` and the loop time it was given
        self._requested: set[str] = set()  # funds asked for now, out of schedule
        self._closing = False

    def use_database(self, database: DatabaseThread) -> None:
        """Make the feed's writes on the runtime's database thread, so a locked database never stalls the loop."""
        from storage.fragility import FragilityStore

        self.database = database
        self.writes = FragilityStore(database.store)

    # --- what the scheduler and /status ask -------------------------------------------------------
    def stale(self, now: datetime) -> dict[str, StaleMark]:
        """Return the series whose fund has had no finished snapshot for too long."""
        marks = {}
        for fund, mark in self.tracker.stale(now).items():
            for symbol in series_symbols(fund):
                marks[symbol] = mark
        return marks

    def next_poll_time(self, now: datetime) -> datetime | None:
        """Say when the next snapshot is due; None (poll at the feed's interval) while one is running or due."""
        if self.table is None:
            return None
        due = [self._due_at(fund) for fund in self.settings.funds]
        if any(d is None or d <= now for d in due) or self._requested:
            return None
        return min(d for d in due if d is not None)

    def request_snapshot(self, fund: str | None = None) -> list[str]:
        """Ask for a snapshot of one fund (or every fund) at the next poll, whatever the schedule says."""
        funds = [fund] if fund else list(self.settings.funds)
        self._requested.update(f for f in funds if f in self.settings.funds)
        return [f for f in funds if f in self.settings.funds]

    def _due_at(self, fund: str) -> datetime | None:
        """Return when the fund's next snapshot is due; None while one is running."""
        assert self.table is not None
        if self.table.running(fund) is not None:
            return None
        last = self.table.last_finished(fund, ("complete", "incomplete"))
        if last is None:
            return datetime.min.replace(tzinfo=timezone.utc)
        if last.status == "incomplete":
            return (last.finished_at or last.started_at) + timedelta(minutes=self.settings.retry_incomplete_minutes)
        return last.started_at + timedelta(days=self.settings.snapshot_every_days)

    # --- the poll --------------------------------------------------------------------------------
    async def fetch(self, symbols: Sequence[str], since: Mapping[str, datetime | None], now: datetime) -> FeedResult:
        """Import history once, start due snapshots, read members for one slice; return finished snapshots as bars."""
        assert self.table is not None, "the fragility feed needs the store"
        wanted = set(symbols)
        bars: dict[str, list[Bar]] = {}
        errors: dict[str, str] = {}
        loop = asyncio.get_running_loop()
        # Times within a poll run on from the poll's `now` (the runtime's clock), by the loop's monotonic time.
        self._clock_base = (now, loop.time())
        slice_ends = loop.time() + self.settings.work_per_poll_seconds
        for fund, source in self.settings.funds.items():
            count_symbol = series_symbols(fund)[0]
            if source.csv and fund not in self._imported:
                self._imported.add(fund)  # once per start: a file that cannot be read is reported, not retried
                try:
                    self._merge(bars, await self._import_csv(fund, source.csv, now))
                except (OSError, ValueError) as exc:  # the live snapshots go on without the history
                    errors[count_symbol] = f"history CSV {source.csv} not imported: {exc}"[:300]
                    log.warning("%s %s: %s", self.name, fund, errors[count_symbol])
            try:
                why = self.backoff.why_waiting(fund, now)
                if why is not None:
                    errors[count_symbol] = why
                    continue
                finished = await self._work(fund, source, now, slice_ends)
            except Exception as exc:  # one fund's failure never stops the others
                problem = f"{type(exc).__name__}: {exc}"[:300]
                self.backoff.failed(fund, now, getattr(exc, "retry_after", None))
                self.tracker.failed(fund, now, problem)
                errors[count_symbol] = problem
                log.warning("%s %s: %s", self.name, fund, problem)
                continue
            self.backoff.succeeded(fund)
            if finished is not None:
                if finished.status == "complete":
                    self.tracker.ok(fund, now)
                    self._merge(bars, snapshot_bars(finished))
                else:
                    self.tracker.failed(fund, now, finished.note)
        return FeedResult(bars={s: b for s, b in bars.items() if s in wanted or not wanted}, errors=errors)

    @staticmethod
    def _merge(into: dict[str, list[Bar]], more: Mapping[str, list[Bar]]) -> None:
        for symbol, bars in more.items():
            into.setdefault(symbol, []).extend(bars)

    async def _work(self, fund: str, source: FragilityFund, now: datetime, slice_ends: float) -> Snapshot | None:
        """Advance the fund's snapshot by one slice (starting it when due); return it once finished."""
        assert self.table is not None
        snapshot = self.table.running(fund)
        if snapshot is None:
            due = self._due_at(fund)
            if fund not in self._requested and (due is None or due > now):
                return None
            holdings = await self._holdings(fund, source)
            members = [(m.ticker, m.yahoo, m.name, m.weight_pct) for m in holdings.members]
            assert self.writes is not None
            snapshot_id = await self.database.run(self.writes.start, fund, holdings.as_of, members, now)
            self._requested.discard(fund)
            left_out = ", ".join(f"{n} {kind}" for kind, n in sorted(holdings.left_out.items())) or "none"
            log.info("%s %s: snapshot %d started: %d members as of %s (left out: %s)", self.name, fund, snapshot_id,
                     len(members), holdings.as_of, left_out)
            snapshot = self.table.running(fund)
            assert snapshot is not None
        budget_ends = snapshot.started_at + timedelta(minutes=self.settings.time_budget_minutes)
        cutoff = fresh_since(self.settings, snapshot)
        loop = asyncio.get_running_loop()
        while not self._closing:
            pending = self.table.pending(snapshot.id, cutoff, self.settings.max_attempts)
            if not pending:
                return await self._finish(snapshot, cutoff, "")
            if self._now() >= budget_ends:
                return await self._finish(snapshot, cutoff, f"time budget of {self.settings.time_budget_minutes:g} "
                                    f"minutes ran out with {len(pending)} members unread")
            if loop.time() + self.pace.ready_in() >= slice_ends:
                return None  # the next request's slot (after a Retry-After, say) falls in a later poll
            await self._read_one(snapshot, pending[0])
        return None

    def _now(self) -> datetime:
        """Return the poll's `now` moved on by the time the poll has been working."""
        if self._clock_base is None:
            return datetime.now(timezone.utc)
        started, loop_started = self._clock_base
        return started + timedelta(seconds=asyncio.get_running_loop().time() - loop_started)

    async def _read_one(self, snapshot: Snapshot, member: Any) -> None:
        """Read one member's net income at the polite pace; record the reading or the failed try."""
        assert self.writes is not None
        if not self.sessions.has_yahoo:
            # yfinance brings pandas (most of a second): imported on the import thread, not the event loop
            yf = await load_library("yfinance")
            yf.config.debug.hide_exceptions = False  # failures must reach us as exceptions, not empty tables
        self.members_read += 1
        try:
            reading = await asyncio.wait_for(
                asyncio.to_thread(read_net_income, member.yahoo, self.sessions.yahoo(), self.pace),
                self.settings.timeout_seconds * 4 + 2 / self.settings.requests_per_second)
        except RateLimited as exc:
            pause = min(exc.retry_after if exc.retry_after is not None else self.settings.backoff_base_seconds * 6,
                        self.settings.max_retry_after_seconds)
            log.warning("%s: Yahoo rate-limits us (%s); every request waits %.0f s", self.name, exc, pause)
            self.pace.hold(pause)  # every request waits, not just this member's: the limit is on all of them
            return
        except (TimeoutError, TryLater) as exc:
            why = str(exc) or "no answer in time"
            await self.database.run(self.writes.record_failure, snapshot.id, member.ticker, why)
            if member.attempts + 1 >= self.settings.max_attempts:
                log.info("%s %s: %s gave up after %d tries: %s", self.name, snapshot.fund, member.ticker,
                         member.attempts + 1, why)
            return
        await self.database.run(self.writes.record_reading, member.yahoo, reading.net_income, reading.as_of,
                                reading.source, reading.problem, self._now())

    async def _finish(self, snapshot: Snapshot, cutoff: datetime, why_short: str) -> Snapshot:
        """Tally the snapshot and close it, complete when enough index weight has a figure."""
        assert self.table is not None and self.writes is not None
        now = self._now()
        oldest = now.date() - timedelta(days=self.settings.max_figure_age_days)
        incomes = self.table.incomes(snapshot.id, cutoff, oldest)
        figures = tally(incomes)
        complete = figures.coverage_pct_weight >= self.settings.min_coverage_pct and figures.covered > 0
        notes = [f"coverage {figures.coverage_pct_weight:.1f}% of weight (need {self.settings.min_coverage_pct:g}%)"]
        if why_short:
            notes.append(why_short)
        if figures.no_data:
            shown = ", ".join(figures.no_data[:20]) + (" ..." if len(figures.no_data) > 20 else "")
            notes.append(f"{len(figures.no_data)} without data: {shown}")
        finished = await self.database.run(self.writes.finish, snapshot.id, figures,
                                           "complete" if complete else "incomplete", "; ".join(notes), now)
        level = logging.INFO if complete else logging.WARNING
        log.log(level, "%s %s: snapshot %d %s: %d of %d members covered (%.1f%% of weight), %s%% unprofitable by "
                "count, %s%% by weight", self.name, snapshot.fund, snapshot.id, finished.status, figures.covered,
                figures.members, figures.coverage_pct_weight, _pct(figures.unprofitable_pct_count),
                _pct(figures.unprofitable_pct_weight))
        return finished

    # --- sources ---------------------------------------------------------------------------------
    async def _holdings(self, fund: str, source: FragilityFund) -> Holdings:
        url = source.ishares_url or ISHARES_DEFAULTS[fund]
        text = await download_ishares(await self.sessions.ishares(), url, self.settings.ishares_base_url, "iShares holdings file")
        return parse_ishares_holdings(text, f"{fund} holdings file")

    async def import_history(self, now: datetime) -> dict[str, list[Bar]]:
        """Import every fund's history CSV (once) and return its bars, without taking a snapshot (backtests)."""
        history: dict[str, list[Bar]] = {}
        for fund, source in self.settings.funds.items():
            if source.csv and fund not in self._imported:
                self._imported.add(fund)
                self._merge(history, await self._import_csv(fund, source.csv, now))
        return history

    async def _import_csv(self, fund: str, path: str, now: datetime) -> dict[str, list[Bar]]:
        from bot.feeds.fragility_history import read_fragility_csv

        assert self.table is not None
        rows, problems = await asyncio.to_thread(read_fragility_csv, path)
        for problem in problems:
            log.warning("%s %s: skipped %s", self.name, fund, problem)
        assert self.writes is not None
        added = await self.database.run(self.writes.record_imported, fund, rows, now)
        log.info("%s %s: imported %d snapshots from %s (%d already known)", self.name, fund, added, path,
                 len(rows) - added)
        history: dict[str, list[Bar]] = {}
        for snapshot in self.table.imported(fund):
            self._merge(history, snapshot_bars(snapshot))
        for symbol, bars in history.items():  # history for /status and the backtest, whatever the engine holds
            await self.database.run(self.database.store.upsert_bars, symbol, bars)
        return history

    async def close(self) -> None:
        """Stop after the member being read, and close the HTTP sessions."""
        self._closing = True
        await self.sessions.close()


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def build(name: str, settings: FragilitySettings, symbols: Sequence[Any], store: Any) -> FragilityFeed:
    """Build a fragility feed from its validated settings."""
    if isinstance(settings, Mapping):
        settings = FragilitySettings(**settings)
    return FragilityFeed(name, settings, symbols, store)
