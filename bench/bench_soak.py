"""Benchmark: a soak of seven market days in accelerated time, with faults sprinkled in.

The runtime `riskon run` builds (feeds, engine, outbox, delivery, Telegram notifier over HTTP) is driven by an
injected clock through the real week of 2026-08-10 to 2026-08-18 (^RUT and IWM made all-time highs on three of
those days), against fake Yahoo and fake Telegram servers on 127.0.0.1. Yahoo serves the forming bar during the
session and the final one after the close; every poll step, with some probability, Yahoo answers 502, 429,
garbage, an empty chart or hangs, and Telegram answers 429, 500, 502 or hangs for a chat.

Figures: resident memory, asyncio tasks, open file descriptors and sockets at the start (after the first day,
which warms caches and imports) and at the end; polls made; faults injected; alerts expected and recorded;
messages sent, lost and duplicated. Run alone: python bench/bench_soak.py [--step-minutes N] [--chats N].
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import random
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import parse_config
from bot.runtime import Runtime
from storage import Store
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.fakes.yahoo import DailyRow, FakeYahoo, Instrument, read_csv_rows

WEEK = [date(2026, 8, 10), date(2026, 8, 11), date(2026, 8, 12), date(2026, 8, 13), date(2026, 8, 14),
        date(2026, 8, 17), date(2026, 8, 18)]
OPEN, CLOSE = timedelta(hours=13, minutes=30), timedelta(hours=20)  # NYSE session in UTC (EDT)
FIRST_POLL, LAST_POLL = timedelta(hours=13), timedelta(hours=20, minutes=30)  # 20:30: the close is confirmable
YAHOO_FAULTS = ("status502", "status429", "malformed", "empty", "timeout")
TELEGRAM_FAULTS = ("429", "500", "502", "timeout")

CONFIG = """
storage: {{path: "{db}"}}
schedule: {{retry_base_seconds: 5, retry_max_seconds: 120, max_attempts: 20, backoff_max_seconds: 600}}
feeds:
  yahoo: {{kind: yahoo, base_url: "{yahoo}", every_seconds: 300, timeout_seconds: 1, cache_dir: "{cache}",
          stale_after_seconds: 3600, backoff_base_seconds: 5, backoff_max_seconds: 300}}
symbols:
  - {{id: "^RUT", feed: yahoo, asset_class: index}}
  - {{id: IWM, feed: yahoo, asset_class: etf}}
rules:
  - {{id: rut_ath, kind: new_ath, symbols: ["^RUT"], by: close}}
  - {{id: iwm_ath_intraday, kind: new_ath, symbols: [IWM], by: high}}
channels:
  telegram: {{token: "${{TELEGRAM_BOT_TOKEN}}", base_url: "{telegram}", poll_timeout_seconds: 1,
              request_timeout_seconds: 1, messages_per_second: 250, register_commands: false}}
"""


@dataclass(frozen=True)
class Vitals:
    """What the process holds at one moment."""

    rss_mb: float
    tasks: int
    fds: int
    sockets: int
    threads: int


@dataclass
class SoakReport:
    """What a soak did and what it left behind."""

    days: int = 0
    polls: int = 0
    faults: Counter = field(default_factory=Counter)
    expected: list[str] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)
    sent: Counter = field(default_factory=Counter)  # (chat, text) -> copies
    chats: int = 0
    outbox: dict[str, int] = field(default_factory=dict)
    vitals: list[Vitals] = field(default_factory=list)  # after the backfill, then after each day
    warm: int = 0  # index in `vitals` of the end of the first day that sent alerts
    before: Vitals | None = None  # before the fakes and the runtime started
    after: Vitals | None = None  # once the runtime and the fakes have stopped
    seconds: float = 0.0

    @property
    def start(self) -> Vitals:
        """Return the vitals after the first day that sent alerts: the baseline for leaks.

        By then every import is done (matplotlib comes with the first chart) and the HTTP connection pools have
        met a full fan-out; what grows after that grows with time.
        """
        return self.vitals[self.warm]

    @property
    def end(self) -> Vitals:
        return self.vitals[-1]

    @property
    def lost(self) -> int:
        per_chat = Counter(chat for chat, _ in self.sent)
        return sum(max(0, len(self.recorded) - per_chat[c]) for c in range(self.chats))

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.sent.values())


def vitals() -> Vitals:
    """Measure resident memory, asyncio tasks, file descriptors, sockets and threads of this process."""
    gc.collect()
    with open("/proc/self/statm") as handle:
        rss_pages = int(handle.read().split()[1])
    fds = os.listdir("/proc/self/fd")
    sockets = 0
    for fd in fds:
        try:
            sockets += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # closed between listing and reading
            pass
    return Vitals(rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20, len(asyncio.all_tasks()), len(fds), sockets,
                  threading.active_count())


def expected_alerts(rut: list[DailyRow], iwm: list[DailyRow]) -> list[str]:
    """Return the dedup keys the week must fire: ^RUT closes and IWM highs above every earlier one."""
    keys = []
    for day in WEEK:
        before = [r for r in rut if r.day < day]
        today = next(r for r in rut if r.day == day)
        if today.close > max(r.close for r in before):
            keys.append(f"rut_ath|^RUT|new_ath|{day}T00:00Z")
        before = [r for r in iwm if r.day < day]
        today = next(r for r in iwm if r.day == day)
        if today.high > max(r.high for r in before):
            keys.append(f"iwm_ath_intraday|IWM|new_ath|{day}T00:00Z")
    return sorted(keys)


def forming_row(final: DailyRow, progress: float) -> DailyRow:
    """Return the day's bar as it stands `progress` (0..1) through the session: it ends at the final bar."""
    close = final.open + (final.close - final.open) * progress
    body = max(final.open, close)
    high = body + (final.high - max(final.open, final.close)) * progress if final.high > body else body
    high = min(max(high, body), final.high)
    low = max(min(final.open, close) - (min(final.open, final.close) - final.low) * progress, final.low)
    return DailyRow(final.day, final.open, high, min(low, final.open, close), close, (final.volume or 0) * progress)


async def soak(market_data: Path, step_minutes: int = 15, chats: int = 40, seed: int = 7,
               yahoo_fault_rate: float = 0.08, telegram_fault_rate: float = 0.15, folder: str | None = None,
               ) -> SoakReport:
    """Run seven market days through the runtime in accelerated time; return what happened."""
    started = time.monotonic()
    rng = random.Random(seed)
    report = SoakReport(chats=chats)
    report.before = vitals()
    rut_all = read_csv_rows(market_data / "RUT.csv", until=WEEK[-1])
    iwm_all = read_csv_rows(market_data / "IWM.csv", until=WEEK[-1])
    report.expected = expected_alerts(rut_all, iwm_all)
    week = {"^RUT": {r.day: r for r in rut_all if r.day >= WEEK[0]},
            "IWM": {r.day: r for r in iwm_all if r.day >= WEEK[0]}}
    yahoo, telegram = FakeYahoo(hang_seconds=1.3), FakeTelegram(overall_per_second=300, hang_seconds=1.3,
                                                                max_poll_seconds=0.5)
    instruments = {"^RUT": yahoo.add(Instrument("^RUT", [r for r in rut_all if r.day < WEEK[0]])),
                   "IWM": yahoo.add(Instrument("IWM", [r for r in iwm_all if r.day < WEEK[0]], instrument_type="ETF"))}
    chat_ids = [80_000 + i for i in range(chats)]
    for chat_id in chat_ids:
        telegram.add_private_chat(chat_id)
    await yahoo.start()
    await telegram.start()
    folder = folder or tempfile.mkdtemp(prefix="riskon-soak-")
    config = parse_config(CONFIG.format(db=Path(folder) / "riskon.db", yahoo=yahoo.url, cache=Path(folder) / "yf",
                                        telegram=telegram.base_url), env={"TELEGRAM_BOT_TOKEN": TOKEN})
    friday = datetime.combine(WEEK[0] - timedelta(days=3), datetime.min.time(), timezone.utc) + LAST_POLL
    clock = _Clock(friday)
    store = Store.open(config.storage.path)
    # Friday's bar closes at Saturday 00:00: everything before that is history, silent.
    runtime = Runtime(config, store, clock=clock, live_since=datetime.combine(WEEK[0] - timedelta(days=2),
                                                                              datetime.min.time(), timezone.utc))
    for chat_id in chat_ids:
        store.subscribe("telegram", str(chat_id))
    sent_so_far = 0

    def fold_sent() -> None:
        # The fake keeps every message (charts included): fold them into counts, so its memory is not riskon's.
        nonlocal sent_so_far
        for message in telegram.sent:
            # One poll's alerts for a chat arrive as one message ("N alerts" then the blocks): count each alert.
            blocks = [b for b in message.text.split("\n\n") if "rule " in b]
            for block in blocks:
                report.sent[(chat_ids.index(message.chat_id), block)] += 1
        sent_so_far += len(telegram.sent)
        telegram.sent.clear()
        telegram.calls.clear()
        yahoo.requests.clear()

    def sprinkle_faults() -> None:
        if rng.random() < yahoo_fault_rate:
            kind, symbol = rng.choice(YAHOO_FAULTS), rng.choice(list(instruments))
            options = {"status": int(kind[6:])} if kind.startswith("status") else {}
            if kind == "status429":
                options["retry_after"] = 60
            # Twice: yfinance retries a failed request once by itself.
            yahoo.fail(symbol, "status" if kind.startswith("status") else kind, times=2, **options)
            report.faults[f"yahoo {kind}"] += 1
        if rng.random() < telegram_fault_rate:
            kind = rng.choice(TELEGRAM_FAULTS)
            telegram.inject(kind, rng.choice(chat_ids))
            report.faults[f"telegram {kind}"] += 1

    async def step(moment: datetime) -> None:
        clock.now = moment
        await runtime.poll("yahoo")
        report.polls += 1
        await runtime.deliver()

    try:
        await runtime.start()
        await step(friday)  # backfill: history is silent
        report.vitals.append(vitals())
        for day in WEEK:
            midnight = datetime.combine(day, datetime.min.time(), timezone.utc)
            moment = midnight + FIRST_POLL
            while moment <= midnight + LAST_POLL:
                for symbol, instrument in instruments.items():
                    final = week[symbol][day]
                    if moment < midnight + OPEN:
                        instrument.forming = None
                    elif moment < midnight + CLOSE:
                        progress = (moment - midnight - OPEN) / (CLOSE - OPEN)
                        instrument.forming = forming_row(final, progress)
                    elif not instrument.rows or instrument.rows[-1].day != day:
                        instrument.forming = None
                        instrument.rows.append(final)
                sprinkle_faults()
                await step(moment)
                moment += timedelta(minutes=step_minutes)
            # Evening: retries come due and failed polls are made again until the day is stored and sent.
            for _ in range(40):
                counts = store.outbox_counts()
                stored = all(store.last_bar_time(s) == midnight for s in instruments)
                if counts["pending"] == counts["retrying"] == 0 and stored:
                    break
                await step(clock.now + timedelta(minutes=3))
            else:
                raise RuntimeError(f"{day}: not settled by the evening: outbox {store.outbox_counts()}")
            sent_today = len(telegram.sent)
            fold_sent()
            report.days += 1
            report.vitals.append(vitals())
            if sent_today and not report.warm:
                report.warm = len(report.vitals) - 1
    finally:
        await runtime.close()
        report.recorded = sorted(r[0] for r in store.db.execute("select dedup_key from alerts where silent = 0"))
        report.outbox = store.outbox_counts()
        store.close()
        await telegram.stop()
        await yahoo.stop()
    # Let the servers' last connection handlers and the feed's worker threads end: a bounded wait on the outcome,
    # since a fixed half second was too short on a loaded machine (a leak still shows: it never ends).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (threading.active_count() > report.before.threads
                                           or len(asyncio.all_tasks()) > report.before.tasks):
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.2)  # and the sockets those handlers were closing
    report.after = vitals()
    report.seconds = time.monotonic() - started
    return report


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def figures(report: SoakReport) -> list[tuple[str, str]]:
    """Return the soak's figures as (name, value text)."""
    start, end = report.start, report.end
    return [
        ("soak market days", f"{report.days} (polls {report.polls}, {report.seconds:.0f} s)"),
        ("soak faults injected",
         f"{sum(report.faults.values())} ({', '.join(f'{k} {v}' for k, v in sorted(report.faults.items()))})"),
        ("soak alerts expected / recorded", f"{len(report.expected)} / {len(report.recorded)} "
                                             f"(false {len(set(report.recorded) - set(report.expected))})"),
        ("soak messages lost / duplicated", f"{report.lost} / {report.duplicates} (to {report.chats} chats)"),
        ("soak RSS start -> end", f"{start.rss_mb:.1f} MiB -> {end.rss_mb:.1f} MiB ({end.rss_mb - start.rss_mb:+.1f}; "
                                  f"start = end of day {report.warm}, the first with alerts)"),
        ("soak RSS per day", " ".join(f"{v.rss_mb:.0f}" for v in report.vitals)),
        ("soak tasks start -> end", f"{start.tasks} -> {end.tasks}"),
        ("soak fds (sockets) start -> end", f"{start.fds} ({start.sockets}) -> {end.fds} ({end.sockets})"),
        ("soak threads start -> end", f"{start.threads} -> {end.threads}"),
        ("soak per day (tasks/fds/sockets)", " ".join(f"{v.tasks}/{v.fds}/{v.sockets}" for v in report.vitals)),
        ("soak before start / after stop", f"tasks {report.before.tasks}/{report.after.tasks}, fds "
                                           f"{report.before.fds}/{report.after.fds}, sockets "
                                           f"{report.before.sockets}/{report.after.sockets}, threads "
                                           f"{report.before.threads}/{report.after.threads}"),
    ]


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    """Run the soak with 5-minute polls and 200 subscribers; print and return its figures."""
    from _util import market_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-minutes", type=int, default=5, help="minutes of market time between polls")
    parser.add_argument("--chats", type=int, default=200, help="subscribers")
    args = parser.parse_args(argv or [])
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.CRITICAL)
    report = asyncio.run(soak(market_data(), step_minutes=args.step_minutes, chats=args.chats))
    rows = figures(report)
    for name, value in rows:
        print(f"{name:<34} {value}")
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(sys.argv[1:])
