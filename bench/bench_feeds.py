"""Benchmark the live feeds against fake servers that add 150 ms to every request.

Figures:
- one poll cycle over 40 symbols, wall time / one request's latency (target <= 2.5; one at a time would be ~40),
  for the yahoo feed (one chart request per symbol, run concurrently; the fake Yahoo in a process of its own, as
  Yahoo's servers are not the bot's CPU; CPU time of the bot's process beside the wall time; each 150 ms poll
  paired with a 0 ms one, the parsing floor under the same load; the first poll's cookie, crumb and time-zone
  requests, and the exchange calendar it builds, reported apart, and the first poll of a restarted process
  (yfinance's cookie and time zones cached, its crumb asked again); yfinance's CPU per symbol with the feed's options
  and with each of its other options alone, to show which of them cut it; the floor those set, 150 ms + 40 times
  that CPU, as no thread can parse while another holds the GIL; the same poll with max_concurrency 16, paired,
  to show what the default of 40 buys. A routine poll is the live one: the last final bar is yesterday's, today's
  forming bar is asked for, Yahoo's 5-day range) and the exchange feed (steady state: one
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
FEWER_AT_ONCE = 16  # a lower max_concurrency, polled beside the default to show what the default buys
STEMS = ["RUT", "IWM", "IWN", "GSPC", "BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD", "DOGE-USD", "BNB-USD"]
CRYPTO_STEMS = ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD", "DOGE-USD", "BNB-USD"]


def _data() -> Path:
    folder = os.environ.get("RISKON_MARKET_DATA")
    if not folder:
        raise SystemExit("set RISKON_MARKET_DATA to the folder of real market CSVs (e.g. /work/shared/data/market)")
    return Path(folder)


YAHOO_FRIDAY = date(2026, 9, 25)


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _fake_yahoo(data: Path, latency: float):
    """Build the fake Yahoo of the bench: 40 symbols of real daily rows, each with today's forming bar."""
    from tests.fakes.yahoo import FakeYahoo, Instrument, read_csv_rows

    fake = FakeYahoo(latency=latency)
    for index in range(SYMBOLS):
        rows = read_csv_rows(data / f"{STEMS[index % 4]}.csv", until=YAHOO_FRIDAY, last=40)
        fake.add(Instrument(f"S{index:02d}", rows[:-1], forming=rows[-1]))
    return fake


def _serve_yahoo(data: str, latency: float, commands) -> None:
    """Serve the fake Yahoo from a process of its own: Yahoo's servers do not spend the bot's CPU or GIL."""

    async def serve() -> None:
        fake = await _fake_yahoo(Path(data), latency).start()
        commands.send(fake.url)
        loop = asyncio.get_running_loop()
        while True:
            command, value = await loop.run_in_executor(None, commands.recv)
            if command == "stop":
                break
            if command == "latency":
                fake.latency = value
            commands.send(list(fake.requests))
        await fake.stop()

    asyncio.run(serve())


class _YahooProcess:
    """Run the fake Yahoo in a child process; set its latency and read its request log between polls."""

    def __init__(self, data: Path, latency: float) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # no fork of a process that holds threads
        self._commands, theirs = context.Pipe()
        self.process = context.Process(target=_serve_yahoo, args=(str(data), latency, theirs), daemon=True)

    def __enter__(self) -> _YahooProcess:
        self.process.start()
        if not self._commands.poll(60):
            raise SystemExit("the fake Yahoo process did not start within 60 s")
        self.url = self._commands.recv()
        return self

    def latency(self, seconds: float) -> None:
        self._commands.send(("latency", seconds))
        self._commands.recv()

    def requests(self) -> list[tuple[str, dict[str, str]]]:
        self._commands.send(("requests", None))
        return self._commands.recv()

    def __exit__(self, *exc) -> None:
        self._commands.send(("stop", None))
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


def _kinds(requests: list[tuple[str, dict[str, str]]]) -> dict[str, int]:
    """Count Yahoo requests by what they are for: cookie, crumb, time zone (the range=1d probe), history."""
    counts = {"cookie": 0, "crumb": 0, "time zone": 0, "history": 0, "other": 0}
    for path, query in requests:
        if path == "/":
            counts["cookie"] += 1
        elif path.endswith("/getcrumb"):
            counts["crumb"] += 1
        elif path.startswith("/v8/finance/chart/"):
            counts["time zone" if query.get("range") == "1d" else "history"] += 1
        else:
            counts["other"] += 1
    return counts


async def _yahoo_polls(data: Path, runs: int = 7) -> dict:
    """Time the first poll of 40 Yahoo symbols (calendar, cookie, crumb, time zones) and then routine polls with
    the feed's default settings, alternating 150 ms and 0 ms of latency so both see the same machine load."""
    import yfinance as yf

    from bot.config import SymbolConfig
    from bot.feeds.yahoo import YahooFeed, YahooSettings

    cache = tempfile.mkdtemp(prefix="riskon-bench-yf-")
    yf.set_tz_cache_location(cache)  # no time zone known yet
    symbols = [SymbolConfig(id=f"S{index:02d}", feed="yahoo", asset_class="index") for index in range(SYMBOLS)]
    ids = [s.id for s in symbols]
    since = {s: _utc(YAHOO_FRIDAY - timedelta(days=1)) for s in ids}
    now = datetime(2026, 9, 25, 15, 0, tzinfo=timezone.utc)  # 11:00 in New York: every symbol's forming bar
    with _YahooProcess(data, LATENCY) as server:
        feed = YahooFeed("yahoo", YahooSettings(base_url=server.url), symbols, None)  # default concurrency, limits
        fewer = YahooFeed("yahoo", YahooSettings(base_url=server.url, max_concurrency=FEWER_AT_ONCE), symbols, None)
        try:
            figures: dict = {}
            wall, cpu = time.perf_counter(), time.process_time()
            await feed._build_calendar()  # the first poll builds it; timed apart as it is no request
            figures["calendar"] = (time.perf_counter() - wall, time.process_time() - cpu)
            wall, cpu = time.perf_counter(), time.process_time()
            result = await feed.fetch(ids, since, now)
            figures["first"] = (time.perf_counter() - wall, time.process_time() - cpu)
            assert not result.errors and len(result.bars) == SYMBOLS, result.errors
            figures["first requests"] = _kinds(server.requests())
            await fewer.fetch(ids, since, now)  # its Tickers made (yfinance's cookie and time zones are known)
            for latency, polled in [(LATENCY, feed), (0.0, feed), (LATENCY, fewer)] * runs:
                server.latency(latency)
                asked = len(server.requests())
                wall, cpu = time.perf_counter(), time.process_time()
                result = await polled.fetch(ids, since, now)
                key = latency if polled is feed else "fewer"
                figures.setdefault(key, []).append((time.perf_counter() - wall, time.process_time() - cpu))
                assert not result.errors and len(result.bars) == SYMBOLS, result.errors
                figures["poll requests"] = _kinds(server.requests()[asked:])
            server.latency(LATENCY)
            asked = len(server.requests())
            figures["restart"] = _first_poll_after_restart(server.url, cache)
            figures["restart requests"] = _kinds(server.requests()[asked:])
            server.latency(0.0)
            figures["options"] = _yfinance_options(feed, since, now)
            return figures
        finally:
            await feed.close()
            await fewer.close()


def _first_poll_after_restart(url: str, cache: str) -> tuple[float, float]:
    """Time the first poll of a new process whose yfinance caches (cookie, time zones) the last one filled."""
    child = subprocess.run([sys.executable, __file__, "--first-poll", url, cache], cwd=str(ROOT), check=True,
                           capture_output=True, text=True, timeout=120)
    wall, cpu = child.stdout.split()[-2:]
    return float(wall), float(cpu)


async def _time_first_poll(url: str, cache: str) -> tuple[float, float]:
    """Poll the 40 Yahoo symbols once in this fresh process (the calendar built first, as it needs no request)."""
    import yfinance as yf

    from bot.config import SymbolConfig
    from bot.feeds.yahoo import YahooFeed, YahooSettings

    yf.set_tz_cache_location(cache)
    symbols = [SymbolConfig(id=f"S{index:02d}", feed="yahoo", asset_class="index") for index in range(SYMBOLS)]
    ids = [s.id for s in symbols]
    feed = YahooFeed("yahoo", YahooSettings(base_url=url), symbols, None)
    try:
        await feed._build_calendar()
        wall, cpu = time.perf_counter(), time.process_time()
        result = await feed.fetch(ids, {s: _utc(YAHOO_FRIDAY - timedelta(days=1)) for s in ids},
                                  datetime(2026, 9, 25, 15, 0, tzinfo=timezone.utc))
        assert not result.errors and len(result.bars) == SYMBOLS, result.errors
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await feed.close()


# yfinance's own options for a daily history, each tried alone against the feed's (see YahooFeed._history).
YFINANCE_OPTIONS = {"actions=True": {"actions": True}, "auto_adjust=True": {"auto_adjust": True},
                    "keepna=False": {"keepna": False}, "prepost=True": {"prepost": True},
                    "rounding=True": {"rounding": True}, "repair=True": {"repair": True}, "period=1d": {"period": "1d"}}


def _yfinance_options(feed, since: dict, now: datetime, rounds: int = 5) -> dict[str, float]:
    """Return yfinance's CPU per symbol (ms) for one routine history call with the feed's options and with each
    other option of YFINANCE_OPTIONS, 40 symbols in a row on one thread (0 ms latency), median of `rounds`."""
    options = dict(interval="1d", period="5d", auto_adjust=False, actions=False, keepna=True, timeout=10)
    tickers = [feed._tickers[feed.sources[symbol]] for symbol in since]
    cpu: dict[str, list[float]] = {}
    for _ in range(rounds):  # interleaved: every variant sees the same machine load
        for name, change in {"the feed's options": {}, **YFINANCE_OPTIONS}.items():
            started = time.process_time()
            for ticker in tickers:
                ticker.history(**{**options, **change})
            cpu.setdefault(name, []).append((time.process_time() - started) * 1000 / len(tickers))
    return {name: statistics.median(values) for name, values in cpu.items()}


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
            if all(feed.streams.heard(symbol) for symbol in ids):
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
    yahoo = asyncio.run(_yahoo_polls(data))
    steady, rollover, in_flight, streamed = asyncio.run(_exchange_cycles(data))
    cold, peak_mb, cached = _cold_start(data)
    s, r = statistics.median(steady), statistics.median(rollover)
    w = statistics.median(streamed)
    (y, y_cpu), (y0, y0_cpu), (y16, y16_cpu) = (tuple(map(statistics.median, zip(*yahoo[k])))
                                                for k in (LATENCY, 0.0, "fewer"))
    first, first_cpu = yahoo["first"]
    calendar, calendar_cpu = yahoo["calendar"]
    asked = ", ".join(f"{n} {kind}" for kind, n in yahoo["first requests"].items() if n)
    restart, restart_cpu = yahoo["restart"]
    restart_asked = ", ".join(f"{n} {kind}" for kind, n in yahoo["restart requests"].items() if n)
    routine = ", ".join(f"{n} {kind}" for kind, n in yahoo["poll requests"].items() if n)
    runs = len(yahoo[LATENCY])
    options = dict(yahoo["options"])
    feeds_options = options.pop("the feed's options")
    return [
        ("yahoo poll, 40 symbols, 150 ms/request, default settings: wall / latency (target <= 2.5)",
         f"{y / LATENCY:.2f} ({y * 1000:.0f} ms wall, {y_cpu * 1000:.0f} ms CPU; median of {runs}; {routine})"),
        ("yahoo poll, same at 0 ms/request, paired with each one above (yfinance and pandas alone)",
         f"{y0 * 1000:.0f} ms wall, {y0_cpu * 1000:.0f} ms CPU (median of {runs})"),
        ("yahoo poll's floor: 150 ms + 40 x yfinance's history CPU per symbol (below), over the latency",
         f"{(LATENCY + SYMBOLS * feeds_options / 1000) / LATENCY:.2f} "
         f"({(LATENCY + SYMBOLS * feeds_options / 1000) * 1000:.0f} ms: one answer is parsed at a time, GIL)"),
        (f"yahoo poll as above with max_concurrency {FEWER_AT_ONCE} instead of the default, paired: wall / latency",
         f"{y16 / LATENCY:.2f} ({y16 * 1000:.0f} ms wall, {y16_cpu * 1000:.0f} ms CPU; median of {runs})"),
        ("yahoo: yfinance history CPU per symbol, feed's options / each other option alone",
         f"{feeds_options:.1f} ms / "
         + ", ".join(f"{name} {value:.1f}" for name, value in options.items())),
        ("yahoo first poll, 40 symbols, 150 ms/request: wall / latency, without the exchange calendar",
         f"{first / LATENCY:.2f} ({first * 1000:.0f} ms wall, {first_cpu * 1000:.0f} ms CPU; {asked})"),
        ("yahoo first poll after a restart (a new process; yfinance's caches kept): wall / latency",
         f"{restart / LATENCY:.2f} ({restart * 1000:.0f} ms wall, {restart_cpu * 1000:.0f} ms CPU; {restart_asked})"),
        ("yahoo first poll: exchange calendar built before it (no request)",
         f"{calendar * 1000:.0f} ms wall, {calendar_cpu * 1000:.0f} ms CPU"),
        ("exchange poll, 40 symbols, steady (tickers): wall / latency", f"{s / LATENCY:.2f} ({s * 1000:.0f} ms median)"),
        ("exchange poll, 40 symbols, day rollover (candles, binance rate limit): wall / latency",
         f"{r / LATENCY:.2f} ({r * 1000:.0f} ms median, {in_flight} requests in flight at most)"),
        ("exchange poll, 40 symbols, stream: true (websocket tickers, no request): wall / latency",
         f"{w / LATENCY:.2f} ({w * 1000:.0f} ms median)"),
        ("riskon run cold start to first completed poll (40 symbols cached)",
         f"{cold:.2f} s ({cached:,} bars cached)"),
        ("riskon run peak RSS at first poll (40 symbols cached)", f"{peak_mb:.0f} MB"),
    ]


if __name__ == "__main__" and sys.argv[1:2] == ["--first-poll"]:
    print(*asyncio.run(_time_first_poll(*sys.argv[2:4])))
elif __name__ == "__main__":
    for name, value in main():
        print(f"{name}: {value}")
