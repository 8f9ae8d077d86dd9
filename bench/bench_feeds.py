"""Benchmark the live feeds against fake servers that add 150 ms to every request.

Figures:
- one poll cycle over 40 symbols, wall time / one request's latency (target <= 2.5; one at a time would be ~40),
  for the yahoo feed (one chart request per symbol, run concurrently) and the exchange feed (steady state: one
  tickers request; day rollover: one candles request per symbol, paced by the exchange's own rate limit);
- cold start of `riskon run` to its first completed poll, and its peak RSS, with 40 symbols' full daily history
  already cached in the database.

Run: RISKON_MARKET_DATA=/work/shared/data/market /work/venv/bin/python bench/bench_feeds.py
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LATENCY = 0.150
SYMBOLS = 40
STEMS = ["RUT", "IWM", "IWN", "GSPC", "BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD", "DOGE-USD", "BNB-USD"]
CRYPTO_STEMS = ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD", "DOGE-USD", "BNB-USD"]


def _data() -> Path:
    folder = os.environ.get("RISKON_MARKET_DATA")
    if not folder:
        raise SystemExit("set RISKON_MARKET_DATA to the folder of real market CSVs (e.g. /work/shared/data/market)")
    return Path(folder)


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


async def _yahoo_cycle(data: Path, runs: int = 5, latency: float = LATENCY) -> tuple[float, int, list[float]]:
    """Time the first poll of 40 Yahoo symbols (cookie, crumb, time zones) and then incremental polls, with the
    feed's default settings; return the first poll's seconds and requests, and the later polls' seconds."""
    import yfinance as yf

    from bot.config import SymbolConfig
    from bot.feeds.yahoo import YahooFeed, YahooSettings
    from tests.fakes.yahoo import FakeYahoo, Instrument, read_csv_rows

    yf.set_tz_cache_location(tempfile.mkdtemp(prefix="riskon-bench-yf-"))
    friday = date(2026, 9, 25)
    fake = FakeYahoo(latency=latency)
    symbols = []
    for index in range(SYMBOLS):
        stem = STEMS[index % 4]
        rows = read_csv_rows(data / f"{stem}.csv", until=friday, last=40)
        name = f"S{index:02d}"
        fake.add(Instrument(name, rows[:-1], forming=rows[-1]))
        symbols.append(SymbolConfig(id=name, feed="yahoo", asset_class="index"))
    await fake.start()
    feed = YahooFeed("yahoo", YahooSettings(base_url=fake.url), symbols, None)  # default concurrency and limits
    ids = [s.id for s in symbols]
    since = {s: _utc(friday - timedelta(days=1)) for s in ids}
    now = datetime(2026, 9, 25, 15, 0, tzinfo=timezone.utc)
    try:
        started = time.perf_counter()
        await feed.fetch(ids, since, now)  # first contact: cookie, crumb, time zones
        first = time.perf_counter() - started
        first_requests = len(fake.requests)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            result = await feed.fetch(ids, since, now)
            times.append(time.perf_counter() - started)
            assert not result.errors and len(result.bars) == SYMBOLS, result.errors
        return first, first_requests, times
    finally:
        await feed.close()
        await fake.stop()


async def _exchange_cycles(data: Path, runs: int = 5) -> tuple[list[float], list[float], int]:
    """Time steady polls (tickers) and day-rollover polls (candles) of 40 binance symbols."""
    from bot.config import SymbolConfig
    from bot.feeds.exchange import ExchangeFeed, ExchangeSettings
    from tests.fakes.exchanges import FakeExchange, Market
    from tests.fakes.yahoo import read_csv_rows

    day = date(2025, 8, 13)
    fake = FakeExchange("binance", latency=LATENCY)
    symbols = []
    for index in range(SYMBOLS):
        rows = read_csv_rows(data / f"{CRYPTO_STEMS[index % len(CRYPTO_STEMS)]}.csv", until=day, last=30)
        pair = f"C{index:02d}/USDT"
        fake.add(Market(pair, rows[:-1], forming=rows[-1]))
        symbols.append(SymbolConfig(id=f"C{index:02d}", feed="x", source=pair, asset_class="crypto"))
    await fake.start()
    feed = ExchangeFeed("x", ExchangeSettings(exchange="binance", base_url=fake.url), symbols, None)
    ids = [s.id for s in symbols]
    since = {s: _utc(day - timedelta(days=1)) for s in ids}
    now = datetime(2025, 8, 13, 12, tzinfo=timezone.utc)
    try:
        await feed.fetch(ids, since, now)  # markets and today's candles
        steady = []
        for _ in range(runs):
            started = time.perf_counter()
            result = await feed.fetch(ids, since, now)
            steady.append(time.perf_counter() - started)
            assert not result.errors and len(result.bars) == SYMBOLS, result.errors
        rollover = []
        for _ in range(max(2, runs // 2)):
            feed._today.clear()  # as on a new UTC day: every symbol's closed candle is fetched
            fake.max_in_flight = 0
            started = time.perf_counter()
            result = await feed.fetch(ids, since, now)
            rollover.append(time.perf_counter() - started)
            assert not result.errors, result.errors
        streamed = await _stream_cycle(fake, symbols, ids, since, now, runs)
        return steady, rollover, fake.max_in_flight, streamed
    finally:
        await feed.close()
        await fake.stop()


async def _stream_cycle(fake, symbols, ids, since, now, runs: int) -> list[float]:
    """Time steady polls with `stream: true` once every websocket ticker has arrived."""
    from bot.feeds.exchange import ExchangeFeed, ExchangeSettings

    fake.ws_interval = 1.0
    feed = ExchangeFeed("x", ExchangeSettings(exchange="binance", base_url=fake.url, stream=True), symbols, None)
    try:
        await feed.fetch(ids, since, now)
        for _ in range(200):
            if len(feed._live) == len(ids):
                break
            await asyncio.sleep(0.05)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            result = await feed.fetch(ids, since, now)
            times.append(time.perf_counter() - started)
            assert not result.errors and len(result.bars) == SYMBOLS, result.errors
        return times
    finally:
        await feed.close()


class _FakesInThread:
    """Run a fake binance in a background thread's event loop, for a child process to reach."""

    def __init__(self, markets) -> None:
        self.markets = markets
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.url = ""
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from tests.fakes.exchanges import FakeExchange

        asyncio.set_event_loop(self.loop)
        self.fake = FakeExchange("binance", latency=LATENCY)
        for market in self.markets:
            self.fake.add(market)
        self.url = self.loop.run_until_complete(self.fake.start()).url
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> _FakesInThread:
        self.thread.start()
        self.ready.wait(30)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _cold_start(data: Path) -> tuple[float, float, int]:
    """Start `riskon run` on a database holding 40 symbols' full history; time its first poll, read peak RSS."""
    from alerts.bars import Bar
    from storage import Store
    from tests.fakes.exchanges import Market
    from tests.fakes.yahoo import read_csv_rows

    today = datetime.now(timezone.utc).date()
    workdir = Path(tempfile.mkdtemp(prefix="riskon-bench-"))
    db_path = workdir / "riskon.db"
    store = Store.open(db_path)
    markets, cached = [], 0
    for index in range(SYMBOLS):
        stem = STEMS[index % len(STEMS)]
        rows = read_csv_rows(data / f"{stem}.csv")
        # Shift the real history so that it ends yesterday: the bot then only needs today's bar.
        shift = (today - timedelta(days=1)) - rows[-1].day
        rows = [replace(r, day=r.day + shift) for r in rows]
        store.upsert_bars(f"C{index:02d}", [Bar(_utc(r.day), r.open, r.high, r.low, r.close, r.volume or 0)
                                            for r in rows])
        cached += len(rows)
        forming = replace(rows[-1], day=today, open=rows[-1].close)
        markets.append(Market(f"C{index:02d}/USDT", rows[-30:], forming=forming))
    store.close()
    with _FakesInThread(markets) as fakes:
        symbols = "\n".join(f'  - {{id: "C{i:02d}", feed: crypto, source: "C{i:02d}/USDT", asset_class: crypto}}'
                            for i in range(SYMBOLS))
        config = workdir / "config.yaml"
        config.write_text(
            f"storage: {{path: {db_path}}}\n"
            f"feeds:\n  crypto: {{kind: exchange, exchange: binance, base_url: '{fakes.url}', every_seconds: 3600}}\n"
            f"symbols:\n{symbols}\n"
            "rules:\n  - {id: ath, kind: new_ath, symbols: [C00, C01, C02], by: close}\n"
            "channels:\n  console: {enabled: true}\n"
        )
        launched = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(config), "--log-level", "WARNING"],
            cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            first_poll = None
            deadline = time.perf_counter() + 120
            while time.perf_counter() < deadline and child.poll() is None:
                try:
                    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1) as conn:
                        row = conn.execute("select last_ok_at from feed_health where feed = 'crypto'").fetchone()
                    if row and row[0]:
                        first_poll = time.perf_counter() - launched
                        break
                except sqlite3.Error:
                    pass
                time.sleep(0.02)
            peak_kb = 0
            with open(f"/proc/{child.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak_kb = int(line.split()[1])
        finally:
            child.terminate()
            try:
                _, errors = child.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                _, errors = child.communicate()
        if first_poll is None:
            raise SystemExit(f"riskon run never completed a poll:\n{errors.decode(errors='replace')[-2000:]}")
    return first_poll, peak_kb / 1024, cached


def main() -> list[tuple[str, str]]:
    """Run every feed benchmark and return (figure, value) pairs."""
    data = _data()
    yahoo_first, first_requests, yahoo = asyncio.run(_yahoo_cycle(data))
    _, _, yahoo_cpu = asyncio.run(_yahoo_cycle(data, latency=0.0))
    steady, rollover, in_flight, streamed = asyncio.run(_exchange_cycles(data))
    cold, peak_mb, cached = _cold_start(data)
    y, s, r = statistics.median(yahoo), statistics.median(steady), statistics.median(rollover)
    y0 = statistics.median(yahoo_cpu)
    w = statistics.median(streamed)
    return [
        ("yahoo poll, 40 symbols, 150 ms/request, default settings: wall / latency (target <= 2.5)",
         f"{y / LATENCY:.2f} ({y * 1000:.0f} ms median of 5)"),
        ("yahoo poll, same with 0 ms/request (yfinance and pandas parsing alone)", f"{y0 * 1000:.0f} ms median of 5"),
        ("yahoo first poll, 40 symbols, 150 ms/request (cookie, crumb, time zones): wall / latency",
         f"{yahoo_first / LATENCY:.2f} ({yahoo_first * 1000:.0f} ms, {first_requests} requests)"),
        ("exchange poll, 40 symbols, steady (tickers): wall / latency", f"{s / LATENCY:.2f} ({s * 1000:.0f} ms median)"),
        ("exchange poll, 40 symbols, day rollover (candles, binance rate limit): wall / latency",
         f"{r / LATENCY:.2f} ({r * 1000:.0f} ms median, {in_flight} requests in flight at most)"),
        ("exchange poll, 40 symbols, stream: true (websocket tickers, no request): wall / latency",
         f"{w / LATENCY:.2f} ({w * 1000:.0f} ms median)"),
        ("riskon run cold start to first completed poll (40 symbols cached)",
         f"{cold:.2f} s ({cached:,} bars cached)"),
        ("riskon run peak RSS at first poll (40 symbols cached)", f"{peak_mb:.0f} MB"),
    ]


if __name__ == "__main__":
    for name, value in main():
        print(f"{name}: {value}")
