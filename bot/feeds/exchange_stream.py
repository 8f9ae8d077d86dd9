"""exchange_stream: websocket tickers beside an exchange feed's polls, with the fallback to REST said once."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from time import monotonic
from typing import Any, Callable, Mapping, Sequence

from bot.feeds.exchange_client import describe, ticker_price
from bot.feeds.quality import Backoff

log = logging.getLogger("riskon.feeds.exchange")


@dataclass
class LiveTicker:
    """The newest websocket ticker of a symbol and when it arrived."""

    last: float
    received_at: float  # time.monotonic(): freshness is judged on the wall clock, whatever the engine's clock


class TickerStreams:
    """Follow each symbol's websocket ticker, reconnecting with backoff; hand out a price only while it is fresh."""

    def __init__(self, name: str, sources: Mapping[str, str], client: Callable[[], Any], silent_seconds: float,
                 backoff_base_seconds: float) -> None:
        self.name = name
        self.sources = sources
        self.client = client  # the feed's ccxt client, built before the first watcher starts
        self.silent_seconds = silent_seconds
        self.backoff_base_seconds = backoff_base_seconds
        self._live: dict[str, LiveTicker] = {}
        self._watchers: dict[str, asyncio.Task] = {}
        self._error: dict[str, str] = {}
        self._watching_since: dict[str, float] = {}  # when each watcher (re)connected, on the monotonic clock
        self._silent: set[str] = set()  # symbols whose connected socket went quiet (logged once)

    def ensure(self, symbols: Sequence[str]) -> None:
        """Start (or restart) a watcher for every symbol that has none running."""
        for symbol in symbols:
            task = self._watchers.get(symbol)
            if task is None or task.done():
                self._watching_since[symbol] = monotonic()
                self._watchers[symbol] = asyncio.create_task(self._watch(symbol), name=f"watch {self.name} {symbol}")

    def heard(self, symbol: str) -> bool:
        """Say whether the symbol's socket has delivered a ticker since it last (re)connected."""
        return symbol in self._live

    def fresh_price(self, symbol: str, streaming: bool) -> float | None:
        """Return the symbol's websocket price if it ticked lately, else None (and say once that it went quiet)."""
        fresh_after = monotonic() - self.silent_seconds
        live = self._live.get(symbol)
        if live is not None and live.received_at >= fresh_after:
            if symbol in self._silent:
                self._silent.discard(symbol)
                log.info("%s %s: websocket ticking again; prices from it", self.name, symbol)
            return live.last
        if streaming:
            self._note_silence(symbol, live, fresh_after)
        return None

    def _note_silence(self, symbol: str, live: LiveTicker | None, fresh_after: float) -> None:
        """Log once when a socket that is up (no error) has sent nothing fresh, so prices come over REST."""
        if symbol in self._error or symbol in self._silent:
            return  # down (logged by the watcher), or already said
        last_heard = live.received_at if live is not None else self._watching_since.get(symbol)
        if last_heard is None or last_heard >= fresh_after:
            return  # just connected: its first ticker may still be on its way
        self._silent.add(symbol)
        log.warning("%s %s: websocket connected but silent for %.0f s; taking prices over REST until it ticks again",
                    self.name, symbol, monotonic() - last_heard)

    async def _watch(self, symbol: str) -> None:
        """Follow a symbol's websocket ticker forever, reconnecting with backoff when it drops."""
        backoff = Backoff(self.backoff_base_seconds / 5, 60.0)
        while True:
            try:
                ticker = await self.client().watch_ticker(self.sources[symbol])
                last = ticker_price(ticker)
                if last == last:
                    self._live[symbol] = LiveTicker(last, monotonic())
                backoff.succeeded(symbol)
                if self._error.pop(symbol, None) is not None:
                    self._watching_since[symbol] = monotonic()  # reconnected: silence counts from now
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the socket is down: polling covers until it is back
                self._live.pop(symbol, None)
                self._error[symbol] = describe(exc)
                now = datetime.now(timezone.utc)
                wait = (backoff.failed(symbol, now) - now).total_seconds()
                log.info("%s %s: websocket down (%s); polling, reconnecting in %.1f s", self.name, symbol,
                         self._error[symbol], wait)
                await asyncio.sleep(wait)

    async def close(self) -> None:
        """Stop every watcher."""
        for task in self._watchers.values():
            task.cancel()
        if self._watchers:
            await asyncio.gather(*self._watchers.values(), return_exceptions=True)
        self._watchers.clear()
