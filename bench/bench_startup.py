"""Benchmark: how fast `riskon run` reaches its first poll, and how much memory it holds as it runs.

The real `riskon run` (python -m bot run, its own process) is started against fake Yahoo, kraken and iShares
servers on 127.0.0.1 (tests/fakes), with the repository's config.yaml: only the services' addresses are rewritten.

- Start-up: the default config plus 26 more Yahoo symbols (40 in all), their history already cached in the
  database by an earlier run. Time to first poll = from starting the process to the first request any feed's
  server receives (measured by the fakes, outside the bot), with the CPU time the bot had used by then (from
  /proc: other processes' load stretches it far less than the wall time). Several runs; the median is the figure.
- Memory: the default config as shipped (console channel, 14 symbols, the fragility snapshot reading ~2,000
  members' net income at its default pace) from a fresh database; VmRSS of the process sampled from
  /proc/PID/status. The run lasts --seconds (not an hour): the figure for an hour is extrapolated from the
  growth over the second half of the run, and printed as an extrapolation.
  Beside it, the RSS of a process that only imports what the run loads (riskon's run path and the feeds'
  libraries): the floor that the run's own data, threads and allocator add to.

Run alone: python bench/bench_startup.py [--runs N] [--seconds S]; or python bench/run.py startup.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.exchanges import FakeExchange, Market
from tests.fakes.ishares import FakeIShares, Holding, cash_and_futures
from tests.fakes.yahoo import DailyRow, FakeYahoo, Instrument, read_csv_rows
from tests.ops.bot_process import stored_bars

REPO = Path(__file__).resolve().parent.parent
EXTRA_SYMBOLS = 26  # the default config has 14 symbols: 40 in all for the start-up figure
EXTRA_HISTORY_DAYS = 1500
CRYPTO_FILES = ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD", "DOGE-USD", "BNB-USD"]
MEMBERS = 1950  # about the Russell 2000's count in IWM's holdings file


def shifted(rows: list[DailyRow], last_day: date, keep_weekdays: bool) -> list[DailyRow]:
    """Relabel rows so the newest is on (or, keeping weekdays, just before) `last_day`."""
    shift = last_day - rows[-1].day
    if keep_weekdays:
        shift = timedelta(days=shift.days // 7 * 7)
    return [replace(row, day=row.day + shift) for row in rows]


class Fakes:
    """Yahoo, kraken and iShares fakes serving real history relabelled to end yesterday, on their own thread."""

    def __init__(self, market: Path) -> None:
        self.yahoo, self.kraken, self.ishares = FakeYahoo(), FakeExchange("kraken"), FakeIShares()
        yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
        for symbol, stem, kind in (("^RUT", "RUT", "INDEX"), ("IWM", "IWM", "ETF"), ("IWN", "IWN", "ETF")):
            self.yahoo.add(Instrument(symbol, shifted(read_csv_rows(market / f"{stem}.csv"), yesterday, True),
                                      instrument_type=kind))
        # ^RUJ has no history file: Yahoo answers it as an unknown symbol, as it would a delisted one.
        for stem in CRYPTO_FILES:
            rows = shifted(read_csv_rows(market / f"{stem}.csv"), yesterday, False)
            self.yahoo.add(Instrument(stem, rows, timezone="UTC", instrument_type="CRYPTOCURRENCY"))
        for n in range(EXTRA_SYMBOLS):
            rows = read_csv_rows(market / f"{CRYPTO_FILES[n % len(CRYPTO_FILES)]}.csv", last=EXTRA_HISTORY_DAYS)
            rows = [replace(r, open=r.open * (1 + n / 100), high=r.high * (1 + n / 100), low=r.low * (1 + n / 100),
                            close=r.close * (1 + n / 100)) for r in shifted(rows, yesterday, False)]
            self.yahoo.add(Instrument(f"X{n:02d}-USD", rows, timezone="UTC", instrument_type="CRYPTOCURRENCY"))
        for pair, stem in (("BTC/USD", "BTC-USD"), ("ETH/USD", "ETH-USD")):
            rows = shifted(read_csv_rows(market / f"{stem}.csv"), yesterday, False)
            self.kraken.add(Market(pair, rows, forming=replace(rows[-1], day=yesterday + timedelta(days=1))))
        members = [Holding(f"M{n:04d}", round(100 / MEMBERS, 4)) for n in range(MEMBERS)]
        as_of = yesterday
        self.ishares.publish("IWM", as_of, 281_800_000, 240.0)
        self.ishares.publish("IWN", as_of, 60_000_000, 170.0)
        self.ishares.publish_holdings("IWM", as_of, members + cash_and_futures())
        self.ishares.publish_holdings("IWN", as_of, members[::2] + cash_and_futures())
        for n, member in enumerate(members):
            income = (-1) ** n * 1e6 * (1 + n % 17)
            self.yahoo.publish_earnings(member.ticker, trailing=[(as_of - timedelta(days=40), income)],
                                        quarterly=[(as_of - timedelta(days=40), income / 4)])
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fakes", daemon=True)

    def start(self) -> None:
        """Start the servers on their own loop: serving history must not wait for the bench's own work."""
        self.thread.start()
        for fake in (self.yahoo, self.kraken, self.ishares):
            asyncio.run_coroutine_threadsafe(fake.start(), self.loop).result(60)

    def stop(self) -> None:
        """Stop the servers and their thread."""
        for fake in (self.yahoo, self.kraken, self.ishares):
            asyncio.run_coroutine_threadsafe(fake.stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)

    def requests_seen(self) -> int:
        """Return how many requests the feeds' servers have received so far."""
        return len(self.yahoo.requests) + len(self.kraken.requests) + self.ishares.requests

    def charts_seen(self) -> int:
        """Return how many price-history (chart) requests Yahoo has received so far."""
        return sum(1 for path, _ in list(self.yahoo.requests) if path.startswith("/v8/finance/chart/"))


def write_config(fakes: Fakes, folder: Path, extra_symbols: int) -> Path:
    """Write config.yaml as shipped with the services' addresses pointed at the fakes (and `extra_symbols` more)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["storage"]["path"] = str(folder / "riskon.db")
    feeds = config["feeds"]
    feeds["yahoo"].update(base_url=fakes.yahoo.url, cache_dir=str(folder / "yf"))
    feeds["kraken"]["base_url"] = fakes.kraken.url
    for name in ("flows", "fragility"):
        feeds[name].update(yahoo_base_url=fakes.yahoo.url, ishares_base_url=fakes.ishares.url)
    extras = [f"X{n:02d}" for n in range(extra_symbols)]
    config["symbols"] += [{"id": s, "feed": "yahoo", "source": f"{s}-USD", "asset_class": "crypto"} for s in extras]
    if extras:
        config["rules"].append({"id": "extra_ath", "kind": "new_ath", "symbols": extras, "by": "close"})
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def checkout_env(checkout: Path, work: Path) -> dict[str, str]:
    """Return the environment that runs `checkout`'s riskon, its modules compiled once as an installed one has them."""
    # This machine may set PYTHONDONTWRITEBYTECODE: every start would compile riskon's sources again.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(checkout), PYTHONUNBUFFERED="1", PYTHONPYCACHEPREFIX=str(work / "pycache"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", "alerts", "bot", "storage"], cwd=checkout, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    return env


def start_bot(config: Path, log: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start `riskon run` as its own process, its output appended to `log`."""
    with open(log, "ab") as sink:
        return subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(config)], cwd=config.parent,
                                env=env, stdout=sink, stderr=subprocess.STDOUT)


def stop_bot(process: subprocess.Popen) -> None:
    """Stop the bot with SIGTERM (killing it if it outstays 30 s)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rss_mb(pid: int) -> tuple[float, float]:
    """Return the process's resident memory now and at its peak (VmRSS, VmHWM) in MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def fill_cache(config: Path, log: Path, env: dict[str, str], timeout: float = 600) -> int:
    """Run the bot until the bars it stores stop growing (the history of every symbol cached); return their count."""
    process = start_bot(config, log, env)
    db = config.parent / "riskon.db"
    try:
        deadline, last, steady = time.monotonic() + timeout, -1, 0
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(2)
            count = stored_bars(db)
            steady = steady + 1 if count == last and count > 0 else 0
            last = count
            if steady >= 3:
                break
    finally:
        stop_bot(process)
    return last


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system, every thread) a process has used so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_to_first_poll(fakes: Fakes, config: Path, log: Path, env: dict[str, str],
                       timeout: float = 60) -> tuple[float, float, float, float]:
    """Start the bot; return the seconds until a feed's server receives its first request, and until Yahoo (the
    feed of the cached symbols) receives its first price-history request, each by wall clock and by the bot's CPU
    time (which other processes' load on the machine stretches far less)."""
    before, charts = fakes.requests_seen(), fakes.charts_seen()
    started = time.monotonic()
    first: tuple[float, float] | None = None
    process = start_bot(config, log, env)
    try:
        while fakes.charts_seen() == charts:
            if first is None and fakes.requests_seen() != before:
                first = time.monotonic() - started, cpu_seconds(process.pid)
            if time.monotonic() - started > timeout or process.poll() is not None:
                raise RuntimeError(f"no Yahoo poll within {timeout:.0f} s; see {log}")
            time.sleep(0.002)
        chart = time.monotonic() - started, cpu_seconds(process.pid)
        first = first if first is not None else chart
        return first[0], chart[0], first[1], chart[1]
    finally:
        stop_bot(process)


def memory_over_time(config: Path, log: Path, env: dict[str, str], seconds: float, every: float = 5.0,
                     sample: Callable[[int], tuple[float, ...]] = rss_mb) -> list[tuple[float, ...]]:
    """Run the bot for `seconds`, sampling (elapsed s, *sample(pid)) every `every` s (by default RSS, peak RSS)."""
    process = start_bot(config, log, env)
    started = time.monotonic()
    samples: list[tuple[float, ...]] = []
    time.sleep(1.0)  # past the interpreter's own start
    try:
        while (elapsed := time.monotonic() - started) < seconds and process.poll() is None:
            samples.append((elapsed, *sample(process.pid)))
            time.sleep(every)
        if process.poll() is not None:
            raise RuntimeError(f"riskon run ended early (exit {process.returncode}); see {log}")
    finally:
        stop_bot(process)
    return samples


IMPORTS_ALONE = """
import importlib, sys
import bot.cli, bot.runtime, bot.scheduler, bot.serving
from bot.config import load_config
from bot.feeds import build_feed
config = load_config(sys.argv[1])
for name, feed in config.feeds.items():
    symbols = [s for s in config.symbols if s.feed == name or s.history_feed == name]
    for library in getattr(build_feed(name, feed.kind, feed.settings, symbols, None), "libraries", ()):
        importlib.import_module(library)
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")) / 1024)
"""


def imports_alone_mb(config: Path, env: dict[str, str]) -> float:
    """Return the RSS of a process that only imports what `riskon run` of `config` loads (riskon's run path and
    its feeds' libraries), in MB: the floor under the run's figure, which the work above it adds to."""
    done = subprocess.run([sys.executable, "-c", IMPORTS_ALONE, str(config)], cwd=config.parent, env=env,
                          check=True, capture_output=True, text=True)
    return float(done.stdout.split()[-1])


def slope_mb_per_hour(samples: list[tuple[float, ...]], column: int = 1) -> float:
    """Return the least-squares growth of a sampled column (RSS) over the second half of the run, per hour."""
    half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    if len(half) < 2:
        return 0.0
    return statistics.linear_regression([s[0] for s in half], [s[column] for s in half]).slope * 3600


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    """Measure time to first poll (40 cached symbols) and RSS over a run of the default config; print the figures."""
    from _util import market_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed starts (the median is the figure)")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_STARTUP_SECONDS", 180)),
                        help="length of the memory run (default 180, or $BENCH_STARTUP_SECONDS)")
    parser.add_argument("--baseline", default=os.environ.get("BENCH_STARTUP_BASELINE"),
                        help="another checkout of riskon to pair every figure with (or $BENCH_STARTUP_BASELINE)")
    args = parser.parse_args(argv or [])
    checkouts = {"this": REPO, **({"baseline": Path(args.baseline).resolve()} if args.baseline else {})}
    fakes = Fakes(market_data())
    fakes.start()
    folder = Path(tempfile.mkdtemp(prefix="riskon-bench-startup-"))
    rows: list[tuple[str, str]] = []
    try:
        cached, envs = {}, {}
        firsts: dict[str, list[float]] = {name: [] for name in checkouts}
        yahoos: dict[str, list[float]] = {name: [] for name in checkouts}
        first_cpus: dict[str, list[float]] = {name: [] for name in checkouts}
        yahoo_cpus: dict[str, list[float]] = {name: [] for name in checkouts}
        for name, checkout in checkouts.items():
            (folder / name).mkdir()
            envs[name] = checkout_env(checkout, folder / name)
            cached[name] = write_config(fakes, (folder / name), EXTRA_SYMBOLS)
            bars = fill_cache(cached[name], folder / name / "fill.log", envs[name])
        symbols = len(yaml.safe_load(cached["this"].read_text())["symbols"])
        for _ in range(args.runs):  # paired: each checkout starts in turn, under the same load
            for name in checkouts:
                first, yahoo, first_cpu, yahoo_cpu = time_to_first_poll(fakes, cached[name],
                                                                         folder / name / "starts.log", envs[name])
                firsts[name].append(first)
                yahoos[name].append(yahoo)
                first_cpus[name].append(first_cpu)
                yahoo_cpus[name].append(yahoo_cpu)
        rows.append(("run: load average (1 min) after the timed starts", f"{os.getloadavg()[0]:.1f}"))
        for what, figures, cpus in (("first poll (any feed)", firsts, first_cpus),
                                    ("first Yahoo chart request", yahoos, yahoo_cpus)):
            for name in checkouts:
                times = figures[name]
                rows.append((f"run: {what}, {symbols} symbols cached ({bars:,} bars), median of {args.runs} [{name}]",
                             f"{statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}; "
                             f"target <= 1.5); CPU by then {statistics.median(cpus[name]):.2f} s"))
            if args.baseline:
                ratio = statistics.median(figures["this"]) / statistics.median(figures["baseline"])
                rows.append((f"run: {what}, this / baseline (medians)", f"{ratio:.2f}"))
        for name in checkouts:
            fresh = folder / name / "default"
            fresh.mkdir()
            config = write_config(fakes, fresh, 0)
            samples = memory_over_time(config, fresh / "run.log", envs[name], args.seconds)
            for elapsed, rss, _ in samples[:: max(1, len(samples) // 8)] + samples[-1:]:
                print(f"  [{name}] default config, {elapsed:5.0f} s: RSS {rss:6.1f} MB")
            last, peak = samples[-1][1], max(s[2] for s in samples)
            growth = slope_mb_per_hour(samples)
            floor = imports_alone_mb(config, envs[name])
            rows += [
                (f"run: RSS after {samples[-1][0]:.0f} s, default config [{name}]",
                 f"{last:.1f} MB (peak {peak:.1f} MB)"),
                (f"run: RSS of its imports alone, no work done [{name}]",
                 f"{floor:.1f} MB (the run holds {last - floor:.1f} MB more)"),
                (f"run: RSS growth over the second half [{name}]", f"{growth:+.1f} MB/hour"),
            ]
            if samples[-1][0] >= 3600 - 2 * 5.0:  # the last sample of an hour's run (one every 5 s)
                rows.append((f"run: RSS at 1 hour, MEASURED [{name}]", f"{last:.1f} MB (target <= 150)"))
            else:
                rows.append((f"run: RSS at 1 hour, EXTRAPOLATED (linear) [{name}]",
                             f"{last + max(growth, 0.0) * (3600 - samples[-1][0]) / 3600:.1f} MB "
                             "(target <= 150; not measured)"))
    except BaseException:
        print(f"logs kept in {folder}", file=sys.stderr)
        raise
    else:
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        fakes.stop()
    for name, value in rows:
        print(f"{name:<72} {value}")
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(sys.argv[1:])
