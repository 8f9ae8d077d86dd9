"""yahoo: daily bars of indices, ETFs (and Yahoo's crypto pairs) through yfinance, polled while NYSE trades."""

from __future__ import annotations

import asyncio
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Mapping, Sequence

from alerts.bars import Bar
from bot.backoff import backoff_seconds
from bot.feeds.base import FeedResult
from bot.feeds.libraries import load_library
from bot.feeds.market_hours import MarketClock, market_clock, next_open
from bot.feeds.quality import (
    Backoff,
    StaleMark,
    StaleTracker,
    newest_stored,
    screen_bars,
    symbols_to_poll,
)
from bot.feeds.settings import YahooSettings
from bot.feeds.yahoo_client import (
    SHAPE_ERRORS,
    YahooHTTPError,
    YahooNoBars,
    YahooTimeout,
    describe_failure,
    forget_memoised_answers,
    is_missing,
    no_bars_reason,
    quiet_pandas_deprecations,
    yahoo_session,
)

log = logging.getLogger("riskon.feeds.yahoo")

# A routine poll asks for Yahoo's shortest range while the last stored bar is this many days old at most: a handful
# of rows, and yfinance skips its start-date arithmetic (about 3 ms of CPU a symbol); older, it asks from that day.
ROUTINE_RANGE, ROUTINE_RANGE_DAYS = "5d", 3
CONFIRM_RETRY_FIRST_SECONDS = 300.0  # the first try again for a late closing bar; each next window is twice as long
# A symbol's download: the last bar held, the session whose bar is expected, and the market's clock (None: crypto).
Plan = tuple[datetime | None, date | None, MarketClock | None]


class YahooFeed:
    """Poll Yahoo through yfinance: full history once, then what is newer, plus today's forming bar."""

    def __init__(self, name: str, settings: YahooSettings, symbols: Sequence[Any] = (), store: Any = None) -> None:
        self.name = name
        self.settings = settings
        self.store = store
        self.sources: dict[str, str] = {}
        self.asset_classes: dict[str, str] = {}
        self.live: set[str] = set()  # symbols whose live bars come from here (others only take history)
        for symbol in symbols:
            self.add_symbol(symbol)
        self.session: Any = None  # made with yfinance at the first poll (_load_yfinance)
        self.pool = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix=f"yahoo-{name}")
        # Its own thread: the download pool's threads are counted against the requests' time limits.
        self._parser = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"yahoo-{name}-parse")
        self.backoff = Backoff(settings.backoff_base_seconds, settings.backoff_max_seconds)
        self.tracker = StaleTracker(timedelta(seconds=settings.stale_after_seconds))
        self._calendar: Any = None
        self._tickers: dict[str, Any] = {}
        self._slots: asyncio.Semaphore | None = None  # one per free worker thread: a request's clock starts in it
        self.in_flight = 0  # requests running in worker threads now
        # Live symbols whose closing bar Yahoo had not published at the confirm poll: the session awaited.
        self.awaiting_close: dict[str, date] = {}
        self._close_tries = 0
        self._close_retry_seconds = CONFIRM_RETRY_FIRST_SECONDS  # drawn once per missed close, not per question

    def _load_yfinance(self) -> None:
        """Import yfinance (and pandas with it: most of a second) and make the Session, at the first poll."""
        import yfinance as yf

        # Errors must reach us as exceptions: an empty frame would read as "no new data".
        yf.config.debug.hide_exceptions = False
        quiet_pandas_deprecations()
        if self.settings.cache_dir:
            yf.set_tz_cache_location(self.settings.cache_dir)
        self.session = yahoo_session(self.settings.base_url, self.settings.timeout_seconds)

    def add_symbol(self, symbol: Any) -> None:
        """Learn a symbol's Yahoo name and asset class from its config."""
        if getattr(symbol, "history_feed", None) == self.name and getattr(symbol, "feed", None) != self.name:
            source = symbol.history_source or symbol.id
        else:
            source = symbol.source_name
            self.live.add(symbol.id)
        self.sources[symbol.id] = source
        self.asset_classes[symbol.id] = symbol.asset_class

    @property
    def libraries(self) -> tuple[str, ...]:
        """Name the libraries a poll imports first (preloaded at start, bot.feeds.libraries)."""
        markets = any(asset_class != "crypto" for asset_class in self.asset_classes.values())
        return ("yfinance", "exchange_calendars") if markets else ("yfinance",)

    @property
    def calendar(self) -> Any:
        """Return the exchange calendar (built on first use if a poll has not built it yet)."""
        if self._calendar is None:
            self._calendar = self._new_calendar()
        return self._calendar

    def _new_calendar(self) -> Any:
        """Build the exchange calendar with the session tables next_poll_time reads: most of a second of CPU."""
        import exchange_calendars

        calendar = exchange_calendars.get_calendar(self.settings.calendar)
        next_open(calendar, datetime.now(timezone.utc))  # its first call builds the session tables
        return calendar

    async def _build_calendar(self) -> None:
        """Build the calendar on the parse thread before the first poll needs it: the chats are answered meanwhile."""
        if self._calendar is None:
            await load_library("exchange_calendars")
            built = await asyncio.get_running_loop().run_in_executor(self._parser, self._new_calendar)
            if self._calendar is None:  # a concurrent fetch may have built one meanwhile
                self._calendar = built

    def stale(self, now: datetime) -> dict[str, StaleMark]:
        """Return the live symbols whose data stopped updating, with since-when and why."""
        return {s: mark for s, mark in self.tracker.stale(now).items() if s in self.live}

    def next_poll_time(self, now: datetime) -> datetime | None:
        """Say when the next poll is worth making: None while trading (or for crypto), else the confirm or open."""
        if not self.live or any(self.asset_classes.get(s) == "crypto" for s in self.live):
            return None
        delay = timedelta(minutes=self.settings.confirm_after_close_minutes)
        clock = market_clock(self.calendar, now, delay)
        if clock.is_open:
            return None
        if clock.close_at is not None and now < clock.close_at + delay:
            return clock.close_at + delay
        upcoming = next_open(self.calendar, now)
        if self.awaiting_close:
            # A closing bar is late: try again soon, then less often, until it is published or the market opens.
            return min(now + timedelta(seconds=self._close_retry_seconds), upcoming)
        return upcoming

    async def fetch(self, symbols: Sequence[str], since: Mapping[str, datetime | None], now: datetime) -> FeedResult:
        """Fetch every due symbol concurrently; failures land in `errors`, one per symbol."""
        delay = timedelta(minutes=self.settings.confirm_after_close_minutes)
        plans: dict[str, Plan] = {}  # per symbol: the last bar held, the session expected, the market's clock
        downloads: dict[str, asyncio.Task] = {}
        due, errors = symbols_to_poll(self.name, symbols, self.sources, self.backoff, now)
        if self.session is None and due:  # off the event loop: the chats are answered and other feeds polled meanwhile
            await load_library("yfinance")
            await asyncio.get_running_loop().run_in_executor(self._parser, self._load_yfinance)
        elif due:
            quiet_pandas_deprecations()  # again, in case another thread's catch_warnings() dropped it since
        # Crypto trades around the clock (the UTC day is the bar): its requests go out at once, while the market
        # calendar the others need is built (most of a second at a first poll).
        crypto = [symbol for symbol in due if self.asset_classes.get(symbol) == "crypto"]
        await self._start_downloads({symbol: (since.get(symbol), now.date(), None) for symbol in crypto}, plans,
                                    downloads, now)
        try:
            if markets := [symbol for symbol in due if self.asset_classes.get(symbol) != "crypto"]:
                await self._build_calendar()
                market = market_clock(self.calendar, now, delay)
                expected = market.session if market.is_open else market.last_confirmable
                wanted: dict[str, Plan] = {}
                for symbol in markets:
                    last = since.get(symbol)
                    if last is None or market.is_open or (expected is not None and last.date() < expected):
                        wanted[symbol] = (last, expected, market)
                    else:
                        self.tracker.ok(symbol, now)  # closed and up to date: nothing is expected
                await self._start_downloads(wanted, plans, downloads, now)
        except BaseException:
            for task in downloads.values():  # the poll fails as a whole: no download is left behind unawaited
                task.cancel()
            await asyncio.gather(*downloads.values(), return_exceptions=True)
            raise
        tasks = {symbol: downloads[symbol] for symbol in due if symbol in downloads}  # in the order asked
        outcomes = await asyncio.gather(*tasks.values(), return_exceptions=True)
        bars: dict[str, list[Bar]] = {}
        for (symbol, outcome) in zip(tasks, outcomes):
            last, expected, clock = plans[symbol]
            if isinstance(outcome, BaseException):
                why = describe_failure(outcome, self.sources[symbol])
                retry_after = getattr(outcome, "retry_after", None)
                at = self.backoff.failed(symbol, now, retry_after)
                self.tracker.failed(symbol, now, why)
                errors[symbol] = why
                log.warning("%s %s: %s (next try after %s)", self.name, symbol, why, at.isoformat(timespec="seconds"))
                continue
            self.backoff.succeeded(symbol)
            previous = newest_stored(self.store, symbol) if last is not None else None
            # Decades of rows on a first start take seconds to turn into bars: not on the event loop.
            parsed, screened = await asyncio.get_running_loop().run_in_executor(
                self._parser, self._screened, symbol, outcome, now, clock, previous)
            if screened.kept:
                bars[symbol] = list(screened.kept)
            # Published means Yahoo served it (a jump held back for a second look is published all the same).
            finals = [b.time.date() for b in parsed if b.final]
            newest = max((b.time.date() for b in screened.kept), default=last.date() if last else None)
            if newest is not None and expected is not None and newest >= expected:
                self.tracker.ok(symbol, now, screened.kept)
            elif last is None and screened.kept:
                self.tracker.ok(symbol, now, screened.kept)
            else:
                self.tracker.failed(symbol, now, f"Yahoo has not published the {expected} bar yet")
            why = self._check_close(symbol, clock, last, finals, now)
            if why:
                errors[symbol] = why
        if not self.awaiting_close:
            self._close_tries = 0
        elif any(self.asset_classes.get(s) != "crypto" for s in plans):
            self._close_tries += 1
            self._close_retry_seconds = backoff_seconds(self._close_tries, CONFIRM_RETRY_FIRST_SECONDS,
                                                        self.settings.confirm_retry_max_minutes * 60, self.backoff.rng)
        return FeedResult(bars=bars, errors=errors)

    async def _start_downloads(self, wanted: Mapping[str, Plan], plans: dict[str, Plan],
                               downloads: dict[str, asyncio.Task], now: datetime) -> None:
        """Plan and start the downloads of `wanted` symbols (their Tickers made first, one after another)."""
        plans.update(wanted)
        if missing := [self.sources[symbol] for symbol in wanted if self.sources[symbol] not in self._tickers]:
            await asyncio.get_running_loop().run_in_executor(self._parser, self._make_tickers, missing)
        for symbol, (last, _, _) in wanted.items():
            downloads[symbol] = asyncio.ensure_future(self._download(self.sources[symbol], last, now))

    def _check_close(self, symbol: str, clock: MarketClock | None, last: datetime | None, finals: list[date],
                     now: datetime) -> str:
        """Note whether the confirm poll found the session's closing bar; return why the symbol waits, if it does."""
        if clock is None or clock.is_open or symbol not in self.live or clock.last_confirmable is None:
            self.awaiting_close.pop(symbol, None)
            return ""
        session = clock.last_confirmable
        held = max([*finals, *([last.date()] if last else [])], default=None)
        if held is not None and held >= session:
            if self.awaiting_close.pop(symbol, None) is not None:
                log.info("%s %s: the close of %s is published", self.name, symbol, session)
            return ""
        if self.awaiting_close.get(symbol) != session:
            log.warning("%s %s: Yahoo has not published the close of %s yet; trying again with back-off until the "
                        "next open", self.name, symbol, session)
        self.awaiting_close[symbol] = session
        return f"waiting for the close of {session} (Yahoo has not published that bar yet)"

    async def _download(self, source: str, last: datetime | None,
                        now: datetime) -> list[tuple[date, float, float, float, float, float]]:
        """Run one symbol's download in a worker thread once one is free, so its time limit is the request's own.

        yfinance passes the time limit to each HTTP request, so a thread ends by itself; the wait here is a bound on
        a server that keeps trickling bytes, and the worker stays counted as busy until its thread has ended.
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.max_concurrency)
        await self._slots.acquire()
        self.in_flight += 1
        future = asyncio.get_running_loop().run_in_executor(self.pool, self._history, source, last, now)

        def finished(done: asyncio.Future) -> None:
            self.in_flight -= 1
            self._slots.release()  # type: ignore[union-attr]
            if not done.cancelled():
                done.exception()  # retrieved here if the wait below gave up first

        future.add_done_callback(finished)
        # Three requests at most per download (time zone, history, and a fresh cookie): each has the time limit.
        return await asyncio.wait_for(asyncio.shield(future), self.settings.timeout_seconds * 3 + 5)

    def _screened(self, symbol: str, rows: list, now: datetime, clock: Any, previous: Any) -> tuple[list[Bar], Any]:
        """Turn downloaded rows into bars and screen them (on a worker thread); return both."""
        parsed = [self._bar(symbol, row, now, clock) for row in rows]
        return parsed, screen_bars(symbol, parsed, now, previous,
                                   self.settings.spike_threshold(self.asset_classes.get(symbol, "index")), self.name)

    def _make_tickers(self, sources: Sequence[str]) -> None:
        """Make the yfinance Tickers of a first poll one after another, before any request is sent."""
        import yfinance as yf

        # A new Ticker takes yfinance's session lock, which the cookie fetch holds: made in forty download threads
        # at once, they queued behind it and one another for up to 1.4 s.
        for source in sources:
            if source not in self._tickers:
                self._tickers[source] = yf.Ticker(source, session=self.session)

    def _history(self, source: str, last: datetime | None,
                 now: datetime) -> list[tuple[date, float, float, float, float, float]]:
        """Download daily rows: all of them (period=max) on first start, else from the last stored day on."""
        import yfinance as yf

        ticker = self._tickers.get(source)
        if ticker is None:  # made again after a failure (see below); kept between polls, as it remembers its time zone
            ticker = self._tickers[source] = yf.Ticker(source, session=self.session)
        # keepna: the empty rows are skipped below, in plain Python; yfinance's own pass costs ~3 ms of pandas a symbol.
        options = dict(interval="1d", auto_adjust=False, actions=False, keepna=True,
                       timeout=self.settings.timeout_seconds)
        self.session.take_timed_out()
        try:
            if last is None:
                frame = ticker.history(period="max", **options)
            elif (now.date() - last.date()).days <= ROUTINE_RANGE_DAYS:
                frame = ticker.history(period=ROUTINE_RANGE, **options)
            else:
                frame = ticker.history(start=last.date().isoformat(), **options)
        except Exception as exc:  # yfinance raises many kinds; each is this symbol's failure, not the poll's
            # A Ticker created while Yahoo failed keeps a missing timezone for good: start afresh next time.
            self._tickers.pop(source, None)
            forget_memoised_answers()
            retry_after = self.session.take_retry_after()
            status = self.session.take_status()
            if self.session.take_timed_out():
                raise YahooTimeout(f"Yahoo did not answer for {source} in time") from exc
            if retry_after is not None or type(exc).__name__ == "YFRateLimitError":
                exc.retry_after = retry_after  # type: ignore[attr-defined]
            elif status is not None and status >= 400:
                # yfinance reports an error page as undecodable JSON; the status says what happened.
                raise YahooHTTPError(f"Yahoo answered HTTP {status} for {source}") from exc
            elif is_missing(exc) or isinstance(exc, SHAPE_ERRORS):
                log.debug("%s: yfinance found no bars in Yahoo's answer", source, exc_info=True)
                raise YahooNoBars(no_bars_reason(exc, source)) from exc
            raise
        first_day = last.date() if last is not None else date.min  # a short range may reach before the last bar
        # Whole columns at once: a Series per row (iterrows) took 0.55 s of CPU for ^RUT's 9,800 rows at a first start.
        columns = [[_number(v) for v in frame[name].tolist()] if name in frame.columns else [math.nan] * len(frame)
                   for name in ("Open", "High", "Low", "Close", "Volume")]
        return [(day, *values) for day, *values in zip(frame.index.date, *columns)
                if day >= first_day and not all(v == 0 or math.isnan(v) for v in values)]  # Yahoo's placeholders

    def _bar(self, symbol: str, row: tuple, now: datetime, clock: MarketClock | None) -> Bar:
        day, open_, high, low, close, volume = row
        if clock is None:  # crypto: the UTC day is over once its midnight has passed
            final = day < now.astimezone(timezone.utc).date()
        else:
            final = day < clock.session or (day == clock.session and clock.last_confirmable == clock.session)
        return Bar(datetime.combine(day, time(0), timezone.utc), open_, high, low, close,
                   0.0 if math.isnan(volume) else volume, "1d", final)

    async def close(self) -> None:
        """Stop the worker threads and the HTTP session."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self._parser.shutdown(wait=True)
        try:
            if self.session is not None:
                self.session.close()
        except Exception:
            pass


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def build(name: str, settings: YahooSettings, symbols: Sequence[Any], store: Any) -> YahooFeed:
    """Build a yahoo feed from its validated settings."""
    if isinstance(settings, Mapping):
        settings = YahooSettings(**settings)
    return YahooFeed(name, settings, symbols, store)


