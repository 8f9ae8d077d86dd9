"""exchange: daily crypto bars from any ccxt exchange, polled around the clock (websocket tickers optional)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime, time, timedelta, timezone
from typing import Any, Mapping, Sequence

from alerts.bars import Bar
from bot.feeds.base import FeedResult
from bot.feeds.exchange_client import (
    DAY_MS,
    GENESIS_MS,
    daily_candles,
    describe,
    make_client,
    number,
    retry_after,
    ticker_price,
)
from bot.feeds.exchange_stream import TickerStreams
from bot.feeds.libraries import load_library
from bot.feeds.quality import (
    Backoff,
    StaleMark,
    StaleTracker,
    newest_stored,
    screen_bars,
    symbols_to_poll,
)
from bot.feeds.settings import ExchangeSettings

log = logging.getLogger("riskon.feeds.exchange")

DAY = timedelta(days=1)
# Exchanges whose daily OHLCV endpoint serves only the newest N candles, however far back `since` asks.
PARTIAL_HISTORY = {"kraken": 720, "krakenfutures": 2000}


def _utc_day(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(timezone.utc).date(), time(0), timezone.utc)


class ExchangeFeed:
    """Poll one ccxt exchange: paginated daily history once, the closed day's bar daily, a forming bar each poll."""

    def __init__(self, name: str, settings: ExchangeSettings, symbols: Sequence[Any] = (), store: Any = None) -> None:
        self.name = name
        self.settings = settings
        self.store = store
        self.sources = {s.id: s.source_name for s in symbols if getattr(s, "feed", name) == name}
        self.asset_classes = {s.id: s.asset_class for s in symbols}
        self.backoff = Backoff(settings.backoff_base_seconds, settings.backoff_max_seconds)
        self.tracker = StaleTracker(timedelta(seconds=settings.stale_after_seconds))
        self.exchange: Any = None
        self._markets_loaded = False
        self._today: dict[str, Bar] = {}  # today's candle as the exchange last gave it, per symbol
        self._truncated: dict[str, datetime] = {}
        self.streams = TickerStreams(name, self.sources, lambda: self.exchange, settings.stream_silent_seconds,
                                     settings.backoff_base_seconds)
        if store is not None:
            for symbol in self.sources:
                saved = store.setting(f"history_start:{self.name}:{symbol}")
                if saved:
                    self._truncated[symbol] = datetime.fromisoformat(saved)

    # --- the ccxt client -----------------------------------------------------------------------
    @property
    def libraries(self) -> tuple[str, ...]:
        """Name the libraries a poll imports first (preloaded at start, bot.feeds.libraries)."""
        return ("ccxt.pro" if self.settings.stream else "ccxt.async_support",)

    async def _client(self) -> Any:
        if self.exchange is None:
            # ccxt imports every exchange it has (about a second of CPU): on the import thread, so the chats and
            # the other feeds' first polls go on meanwhile.
            await load_library(self.libraries[0])
            settings = self.settings
            self.exchange = make_client(settings.exchange, settings.stream, settings.timeout_seconds,
                                        settings.rate_limit_ms, settings.options, settings.base_url)
        return self.exchange

    @property
    def history_window(self) -> int | None:
        """Return how many daily candles the exchange serves at most, when it does not serve full history."""
        if self.settings.full_history is True:
            return None
        window = PARTIAL_HISTORY.get(self.settings.exchange)
        if window is None and self.settings.full_history is False:
            return self.settings.page_limit
        return window

    def stale(self, now: datetime) -> dict[str, StaleMark]:
        """Return the symbols whose data stopped updating, with since-when and why."""
        return self.tracker.stale(now)

    # --- one poll -----------------------------------------------------------------------------
    async def fetch(self, symbols: Sequence[str], since: Mapping[str, datetime | None], now: datetime) -> FeedResult:
        """Fetch daily candles where a day closed (or history is missing), then every forming bar from tickers."""
        wanted, errors = symbols_to_poll(self.name, symbols, self.sources, self.backoff, now)
        if not wanted:
            return FeedResult(errors=errors, truncated_since=dict(self._truncated))
        exchange = await self._client()
        if not self._markets_loaded:
            try:
                await exchange.load_markets()
                self._markets_loaded = True
            except Exception as exc:  # every symbol needs the markets: each one reports why
                why = f"cannot load {self.settings.exchange} markets: {describe(exc)}"
                at = self.backoff.failed("markets", now, retry_after(self.exchange, exc))
                for symbol in wanted:
                    errors[symbol] = why
                    self.tracker.failed(symbol, now, why)
                    self.backoff.resume_at[symbol] = at
                log.warning("%s: %s", self.name, why)
                return FeedResult(errors=errors, truncated_since=dict(self._truncated))
        for symbol in wanted:
            if self.sources[symbol] not in exchange.markets:
                errors[symbol] = f"{self.settings.exchange} has no market {self.sources[symbol]}"
        wanted = [s for s in wanted if s not in errors]
        if self.settings.stream:
            self.streams.ensure(wanted)

        today = _utc_day(now)
        needs_candles = [
            s for s in wanted
            if (last := since.get(s)) is None or last < today - DAY or self._today.get(s) is None
            or self._today[s].time < today
        ]
        candle_results = await asyncio.gather(
            *(self._candles(s, since.get(s), now) for s in needs_candles), return_exceptions=True
        )
        bars: dict[str, list[Bar]] = {}
        failed: set[str] = set()
        for symbol, outcome in zip(needs_candles, candle_results):
            if isinstance(outcome, BaseException):
                self._fail(symbol, now, outcome, errors)
                failed.add(symbol)
            else:
                bars[symbol] = outcome
        quoted = [s for s in wanted if s not in failed]
        prices = await self._last_prices(quoted, now, errors)
        result_bars: dict[str, list[Bar]] = {}
        for symbol in quoted:
            got = list(bars.get(symbol, []))
            finals = [b for b in got if b.final]
            if not finals and symbol in errors:
                continue
            # Closed days fetched this poll are kept even when the price request failed; the forming bar is not.
            price = prices.get(symbol)
            forming = self._forming_bar(symbol, today, price, finals, since.get(symbol)) if price is not None else None
            got = finals + ([forming] if forming is not None else [])
            previous = newest_stored(self.store, symbol) if since.get(symbol) is not None else None
            screened = screen_bars(symbol, got, now, previous,
                                   self.settings.spike_threshold(self.asset_classes.get(symbol, "crypto")), self.name)
            if screened.kept:
                result_bars[symbol] = list(screened.kept)
            if symbol not in errors:
                self.backoff.succeeded(symbol)
                last = since.get(symbol)
                closed_day_due = symbol in needs_candles and last is not None and last < today - DAY
                if closed_day_due and not finals:
                    # Asked for a closed day and got none (late, or an unreadable answer): asked again next poll.
                    self.tracker.failed(symbol, now, f"no candle yet for {(today - DAY).date()}")
                else:
                    self.tracker.ok(symbol, now, screened.kept)
        return FeedResult(bars=result_bars, errors=errors, truncated_since=dict(self._truncated))

    def _fail(self, symbol: str, now: datetime, exc: BaseException, errors: dict[str, str]) -> None:
        why = describe(exc)
        at = self.backoff.failed(symbol, now, retry_after(self.exchange, exc))
        self.tracker.failed(symbol, now, why)
        errors[symbol] = why
        log.warning("%s %s: %s (next try after %s)", self.name, symbol, why, at.isoformat(timespec="seconds"))

    async def _candles(self, symbol: str, last: datetime | None, now: datetime) -> list[Bar]:
        """Fetch daily candles after `last` (from the listing when None), page by page."""
        exchange = self.exchange
        source = self.sources[symbol]
        limit = self.settings.page_limit
        window = self.history_window
        if window is not None:
            limit = min(limit, window)
        if last is not None:
            # Ask only for the days missing: exchanges weigh a candles request by its limit (binance: 1 below 100).
            limit = min(limit, max(10, (now - last).days + 3))
        today_ms = int(_utc_day(now).timestamp() * 1000)
        if last is not None:
            cursor: int | None = int(last.timestamp() * 1000) + DAY_MS
        else:
            # An exchange that keeps only its newest candles is asked for just those; the others from the
            # first day any crypto traded, page after page up to today.
            cursor = None if window is not None else GENESIS_MS
        candles, first_page = await daily_candles(exchange, self.settings.exchange, source, cursor, limit, today_ms,
                                                  listing_unknown=last is None, who=f"{self.name} {symbol}")
        if last is None and not candles:
            raise ValueError(f"{self.settings.exchange} returned no candles for {source}")
        today = _utc_day(now)
        bars = []
        for stamp, open_, high, low, close, volume in (c[:6] for c in candles):
            moment = datetime.fromtimestamp(stamp / 1000, timezone.utc)
            bar = Bar(moment, number(open_), number(high), number(low), number(close), number(volume or 0),
                      "1d", moment + DAY <= now)
            bars.append(bar)
            if moment == today:
                self._today[symbol] = replace(bar, final=False)
        if last is None and bars and window is not None and len(first_page) >= window - 1:
            # The exchange served a full window ending now: the listing may lie before it.
            self._note_truncated(symbol, bars[0].time)
        return bars

    def _note_truncated(self, symbol: str, start: datetime) -> None:
        self._truncated[symbol] = start
        if self.store is not None:
            self.store.set_setting(f"history_start:{self.name}:{symbol}", start.isoformat())
        log.info("%s %s: history starts %s at %s (older candles are not served)", self.name, symbol,
                 start.date().isoformat(), self.settings.exchange)

    async def _last_prices(self, symbols: Sequence[str], now: datetime, errors: dict[str, str]) -> dict[str, float]:
        """Return each symbol's last traded price: from the websocket when fresh, else one tickers request."""
        prices: dict[str, float] = {}
        polled = []
        for symbol in symbols:
            live = self.streams.fresh_price(symbol, self.settings.stream)
            if live is not None:
                prices[symbol] = live
            else:
                polled.append(symbol)
        if not polled:
            return prices
        exchange = self.exchange
        sources = [self.sources[s] for s in polled]
        try:
            if exchange.has.get("fetchTickers"):
                tickers = await exchange.fetch_tickers(sources)
            else:
                answers = await asyncio.gather(*(exchange.fetch_ticker(s) for s in sources))
                tickers = {t["symbol"]: t for t in answers}
        except Exception as exc:  # one request for all: each symbol reports the failure
            for symbol in polled:
                self._fail(symbol, now, exc, errors)
            return prices
        for symbol in polled:
            ticker = tickers.get(self.sources[symbol]) or {}
            last = ticker_price(ticker)
            if last != last:  # NaN: the exchange sent no price
                why = f"{self.settings.exchange} sent no last price for {self.sources[symbol]}"
                self.tracker.failed(symbol, now, why)
                errors[symbol] = why
            else:
                prices[symbol] = last
        return prices

    def _forming_bar(self, symbol: str, today: datetime, last: float, finals: Sequence[Bar],
                     since: datetime | None) -> Bar | None:
        """Build today's forming bar from today's candle (exact open) and the last traded price."""
        candle = self._today.get(symbol)
        if candle is not None and candle.time == today:
            bar = Bar(today, candle.open, max(candle.high, last), min(candle.low, last), last, candle.volume, "1d",
                      False)
        else:
            previous_close = finals[-1].close if finals else None
            if previous_close is None and self.store is not None and since is not None:
                stored = newest_stored(self.store, symbol)
                previous_close = stored.close if stored else None
            if previous_close is None:
                return None
            bar = Bar(today, previous_close, max(previous_close, last), min(previous_close, last), last, 0.0, "1d",
                      False)
        self._today[symbol] = bar
        return bar

    async def close(self) -> None:
        """Stop websocket watchers and close the exchange's HTTP session."""
        await self.streams.close()
        if self.exchange is not None:
            try:
                await self.exchange.close()
            finally:
                self.exchange = None
                self._markets_loaded = False


def build(name: str, settings: ExchangeSettings, symbols: Sequence[Any], store: Any) -> ExchangeFeed:
    """Build an exchange feed from its validated settings."""
    if isinstance(settings, Mapping):
        settings = ExchangeSettings(**settings)  # its validator refuses an exchange ccxt does not ship
    return ExchangeFeed(name, settings, symbols, store)

