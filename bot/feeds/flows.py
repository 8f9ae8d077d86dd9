"""flows: the live feed of ETF daily net creations/redemptions in USD (change in shares outstanding x NAV).

Each poll reads each fund's count from iShares (ishares.py), else Yahoo's get_shares_full, after importing its CSV
once; the counts are cleaned and turned into flows by fund_shares.py, the same code the flows over history use.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, TypeVar

from bot.feeds.base import FeedResult
from bot.feeds.fund_shares import SharesCount, clean_shares, day_stamp, implied_flows, read_flows_csv
from bot.feeds.ishares import download_ishares, parse_ishares_fund_csv
from bot.feeds.quality import Backoff, StaleMark, StaleTracker
from bot.feeds.sessions import FeedSessions
from bot.feeds.settings import ISHARES_DEFAULTS, FlowsSettings, Fund

if TYPE_CHECKING:
    from storage.db import Store
    from storage.thread import DatabaseThread

T = TypeVar("T")
log = logging.getLogger("riskon.feeds.flows")


class FlowsFeed:
    """Collect each fund's shares outstanding daily, store them, and keep its implied flows current."""

    def __init__(self, name: str, settings: FlowsSettings, symbols: Sequence[Any] = (), store: Any = None) -> None:
        self.name = name
        self.settings = settings
        self.store = store  # reads, on the loop's connection
        # Writes go where the runtime writes (use_database); inline on this store until it says so.
        from storage.thread import DatabaseThread

        self.database = DatabaseThread(store, threaded=False)
        self.backoff = Backoff(settings.backoff_base_seconds, settings.backoff_max_seconds)
        self.tracker = StaleTracker(timedelta(seconds=settings.stale_after_seconds))
        self.sessions = FeedSessions("riskon (ETF flows)", settings.timeout_seconds, settings.yahoo_base_url)
        self._imported: set[str] = set()

    @property
    def libraries(self) -> tuple[str, ...]:
        """Name the libraries a poll imports first (preloaded at start, bot.feeds.libraries)."""
        urls = [source.ishares_url if source.ishares_url is not None else ISHARES_DEFAULTS.get(fund)
                for fund, source in self.settings.funds.items()]
        return ("aiohttp",) if any(url and url.lower() != "none" for url in urls) else ()

    def use_database(self, database: DatabaseThread) -> None:
        """Make the feed's writes on the runtime's database thread, so a locked database never stalls the loop."""
        self.database = database

    async def _write(self, work: Callable[..., T], *args: Any) -> T:
        """Run `work(store, *args)` on the database thread's store (inline when the runtime runs in memory)."""
        return await self.database.run(work, self.database.store, *args)

    def stale(self, now: datetime) -> dict[str, StaleMark]:
        """Return the funds whose flows stopped updating, with since-when and why."""
        return self.tracker.stale(now)

    async def fetch(self, symbols: Sequence[str], since: Mapping[str, datetime | None], now: datetime) -> FeedResult:
        """Update every configured fund's flows in the store; return errors per fund (flows are not bars)."""
        errors: dict[str, str] = {}
        for fund, source in self.settings.funds.items():
            why = self.backoff.why_waiting(fund, now)
            if why is not None:
                errors[fund] = why
                continue
            try:
                problem = await self._update(fund, source, now)
            except Exception as exc:  # one fund's failure never stops the others
                problem = f"{type(exc).__name__}: {exc}"[:300]
                self.backoff.failed(fund, now, getattr(exc, "retry_after", None))
            if problem:
                errors[fund] = problem
                self.tracker.failed(fund, now, problem)
                log.warning("%s %s: %s", self.name, fund, problem)
            else:
                self.backoff.succeeded(fund)
                self.tracker.ok(fund, now)
        return FeedResult(errors=errors)

    async def _update(self, fund: str, source: Fund, now: datetime) -> str | None:
        """Import the CSV once, fetch today's count, recompute flows; return a problem or None."""
        if source.csv and fund not in self._imported:
            # Files and Yahoo are read in a worker thread; the store is written on the database thread.
            await self._write(self._import_csv, fund, source.csv,
                              await asyncio.to_thread(read_flows_csv, source.csv, fund), now)
            self._imported.add(fund)
        counts: list[SharesCount] = []
        problems = []
        url = source.ishares_url if source.ishares_url is not None else ISHARES_DEFAULTS.get(fund)
        if url and url.lower() != "none":
            try:
                counts.append(await self._ishares(url))
            except Exception as exc:  # iShares down or changed: the Yahoo fallback takes over
                problems.append(f"iShares: {_short(exc)}")
        if not counts and self.settings.use_yahoo:
            try:
                known = self.store.fund_shares(fund)
                start = (known[-1][0] - timedelta(days=10)) if known else \
                    now.date() - timedelta(days=self.settings.history_days)
                counts.extend(await asyncio.to_thread(self._yahoo_shares, fund, source, start, now))
            except Exception as exc:
                problems.append(f"Yahoo shares: {_short(exc)}")
        if counts:
            rows = [(c.day, c.shares, c.nav, c.source) for c in counts]
            await self._write(lambda store: store.upsert_fund_shares(fund, rows, now))
        await self._write(self._recompute, fund, source, now)
        if not counts and problems:
            return "; ".join(problems)
        return None

    def _import_csv(self, store: Store, fund: str, path: str, parsed: tuple, now: datetime) -> None:
        flows, counts, problems = parsed
        for problem in problems:
            log.warning("%s %s: skipped %s", self.name, fund, problem)
        if flows:
            store.upsert_flows(fund, [(day_stamp(d), v, None, None, "csv") for d, v in flows], now)
        if counts:
            store.upsert_fund_shares(fund, [(c.day, c.shares, c.nav, c.source) for c in counts], now)
        log.info("%s %s: imported %d flows and %d shares counts from %s", self.name, fund, len(flows), len(counts),
                 path)

    async def _ishares(self, url: str) -> SharesCount:
        text = await download_ishares(await self.sessions.ishares(), url, self.settings.ishares_base_url, "iShares fund file")
        return parse_ishares_fund_csv(text.lstrip("\ufeff"))

    def _yahoo_shares(self, fund: str, source: Fund, start: date, now: datetime) -> list[SharesCount]:
        import yfinance as yf

        yf.config.debug.hide_exceptions = False
        ticker = yf.Ticker(source.yahoo or fund, session=self.sessions.yahoo())
        series = ticker.get_shares_full(start=start.isoformat(), end=(now.date() + timedelta(days=1)).isoformat())
        if series is None or len(series) == 0:
            raise ValueError("Yahoo has no shares outstanding for this fund")
        return [SharesCount(stamp.date(), float(value), None, "yahoo") for stamp, value in series.items()]

    def _recompute(self, store: Store, fund: str, source: Fund, now: datetime) -> None:
        """Rebuild implied flows from every stored count, keeping imported flows where no count exists."""
        stored = [SharesCount(d, s, n, src) for d, s, n, src in store.fund_shares(fund)]
        kept, dropped = clean_shares(stored, self.settings.max_daily_change_pct, self.settings.max_unchanged_days)
        for count, reason in dropped:
            log.info("%s %s: ignored shares count of %s: %s", self.name, fund, count.day, reason)
        nav_symbol = source.nav_symbol or fund
        closes = {b.time.date(): b.close for b in store.load_bars(nav_symbol, since=day_stamp(kept[0].day))} \
            if kept else {}
        flows = implied_flows(kept, closes, self.settings.max_gap_days)
        shares_of = {c.day: c.shares for c in kept}
        rows = [(day_stamp(day), flow, shares_of[day], nav, "implied") for day, flow, nav in flows]
        if rows:
            store.upsert_flows(fund, rows, now)
        # Days whose count was found bad lose any flow computed before (e.g. from a stale duplicate).
        bad_days = {c.day for c, _ in dropped} - set(shares_of)
        if bad_days:
            store.delete_flows(fund, [day_stamp(d) for d in bad_days], source="implied")

    async def close(self) -> None:
        """Close HTTP sessions."""
        await self.sessions.close()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def build(name: str, settings: FlowsSettings, symbols: Sequence[Any], store: Any) -> FlowsFeed:
    """Build a flows feed from its validated settings."""
    if isinstance(settings, Mapping):
        settings = FlowsSettings(**settings)
    return FlowsFeed(name, settings, symbols, store)


