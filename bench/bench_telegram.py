"""Benchmark: fan-out of one alert to 1,000 Telegram chats against a fake Bot API counting Telegram's windows.

Runs the real path: outbox rows recorded with the alert, the delivery job (bot/delivery.py), the Telegram
notifier (python-telegram-bot with riskon's pacer) over HTTP to tests/fakes/telegram_api.py, which answers 429
to a 31st message in any one second or a second message to a chat within a second (sliding windows, no
burst allowance), counted when each request arrives.
The alert carries its chart, as live alerts do: uploaded once, then sent by Telegram's file_id.
Figures, medians of RISKON_BENCH_TELEGRAM_RUNS fan-outs (3 by default), with every run's value beside them:
- messages/s as a fraction of 30/s (target >= 0.97), counted by the fake from the first message's arrival to the
  last's, (messages - 1) / seconds, which is exactly 30 for a perfect pacer;
- the same over the whole delivery job, from its start (claims, the chart drawn, the upload) to its end;
- 429 answers (target 0), and the most messages the fake saw in any one second and in the first (target <= 30);
- messages the pacer counted from their whole answer: too few recent round trips to compare with (the first 30),
  or a round trip slower than the fastest recent one by more than the margin (held up on the way, perhaps).
The fake runs in a process of its own, as Telegram's servers do not run in the bot's: its request handling
spends neither the bot's CPU nor its event loop. One more run puts it in the bot's own loop, the strictest case:
a busy loop then delays the fake's counting as it delays the bot's answers. With round trips this short every
message counts from its answer (see pacing.py), which keeps such a run free of 429s, at a cost in rate on a
loaded machine.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.bars import Bar
from alerts.events import AlertEvent
from alerts.messages import format_alert
from bot.config import parse_config
from bot.runtime import Runtime
from storage import Store
from tests.fakes.telegram_api import TOKEN, FakeTelegram

CHATS = 1000
TELEGRAM_LIMIT = 30.0
RUNS = int(os.environ.get("RISKON_BENCH_TELEGRAM_RUNS", "3"))


def _fake_figures(fake: FakeTelegram) -> dict[str, Any]:
    """Return what the fake saw: arrival times, photos, uploads, 429s and the fullest one-second window."""
    return {
        "arrivals": [message.at for message in fake.sent],  # time.monotonic(): one clock for every process here
        "photos": sum(1 for message in fake.sent if message.photo),
        "uploads": fake.uploads,
        "too_many_requests": fake.too_many_requests,
        "limited_by": dict(fake.limited_by),
        "most_in_a_second": fake.most_in_any_window(1.0),
    }


def _serve_telegram(chats: int, commands: Any) -> None:
    """Serve the fake Bot API from a process of its own: Telegram's servers spend neither the bot's CPU nor its loop."""

    async def serve() -> None:
        fake = await FakeTelegram(overall_per_second=TELEGRAM_LIMIT, max_poll_seconds=1).start()
        for chat_id in range(1, chats + 1):
            fake.add_private_chat(10_000 + chat_id)
        commands.send(fake.base_url)
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, commands.recv) != "stop":
            commands.send(_fake_figures(fake))
        await fake.stop()

    asyncio.run(serve())


class _TelegramProcess:
    """Run the fake Bot API in a child process; read what it saw once the fan-out is done."""

    def __init__(self, chats: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # no fork of a process that holds threads
        self._commands, theirs = context.Pipe()
        self.process = context.Process(target=_serve_telegram, args=(chats, theirs), daemon=True)

    def __enter__(self) -> _TelegramProcess:
        self.process.start()
        if not self._commands.poll(60):
            raise SystemExit("the fake Telegram process did not start within 60 s")
        self.base_url: str = self._commands.recv()
        return self

    def figures(self) -> dict[str, Any]:
        self._commands.send("figures")
        return self._commands.recv()

    def __exit__(self, *exc: object) -> None:
        self._commands.send("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


async def fan_out(chats: int = CHATS, own_process: bool = True) -> dict[str, Any]:
    """Deliver one alert to `chats` private chats; return its figures (seconds, rates, messages, 429s, retries).

    With `own_process` the fake runs in a child process, as Telegram's servers do not run in the bot's; else in
    the bot's own event loop, where a busy loop delays the fake's counting too (the strictest case).
    """
    if own_process:
        with _TelegramProcess(chats) as server:
            result = await _deliver(chats, server.base_url)
            return {**result, **server.figures()}
    fake = await FakeTelegram(overall_per_second=TELEGRAM_LIMIT, max_poll_seconds=1).start()
    try:
        for chat_id in range(1, chats + 1):
            fake.add_private_chat(10_000 + chat_id)
        result = await _deliver(chats, fake.base_url)
    finally:
        await fake.stop()
    return {**result, **_fake_figures(fake)}


async def _deliver(chats: int, base_url: str) -> dict[str, Any]:
    """Record one alert for `chats` subscribers and run the delivery job once; return its timings."""
    folder = tempfile.mkdtemp(prefix="riskon-bench-")
    config = parse_config(f"""
feeds: {{replay: {{kind: replay, path: "{folder}"}}}}
symbols: [{{id: "^RUT", feed: replay}}]
rules: [{{id: rut_ath, kind: new_ath, symbols: ["^RUT"]}}]
channels:
  telegram: {{token: "${{TELEGRAM_BOT_TOKEN}}", base_url: "{base_url}", poll_timeout_seconds: 1,
              register_commands: false}}
""", env={"TELEGRAM_BOT_TOKEN": TOKEN})
    now = datetime.now(timezone.utc)
    # A database file, as in production: each outcome is committed (and synced) as it happens.
    runtime = Runtime(config, Store.open(Path(folder) / "riskon.db"))
    store = runtime.store
    for chat_id in range(1, chats + 1):
        store.subscribe("telegram", str(10_000 + chat_id))
    # A year of ^RUT bars, so the alert carries its chart as it does live: one photo per chat.
    day0 = now - timedelta(days=366)
    store.upsert_bars("^RUT", [Bar(day0 + timedelta(days=i), 2000 + i, 2005 + i, 1995 + i, 2001 + i)
                               for i in range(365)])
    event = AlertEvent("rut_ath", "new_ath", "^RUT", now - timedelta(days=1),
                       {"price": 2500.0, "previous_ath": 2442.74, "previous_ath_time": "2021-11-08",
                        "pct_above_previous": 2.3, "days_since_previous_ath": 1400})
    store.record_alert(event, format_alert(event), now, store.recipients(event, now))
    await runtime.start()
    started = time.monotonic()
    report = await runtime.deliver()
    elapsed = time.monotonic() - started
    pacer = runtime.notifiers["telegram"].pacer  # type: ignore[attr-defined]
    await runtime.close()
    store.close()
    return {
        "started": started,
        "elapsed": elapsed,
        "held_up": pacer.held_up,
        "not_sent_first_drain": sum(n for (_, status), n in report.outcomes.items() if status != "sent"),
    }


def _rates(run: dict[str, Any]) -> dict[str, Any]:
    """Add the rates and the first second's count, from the fake's arrival times."""
    arrivals = run["arrivals"]
    return {
        **run,
        "sent": len(arrivals),
        "rate": (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0,
        "start_up": arrivals[0] - run["started"] if arrivals else run["elapsed"],
        "first_second": sum(1 for at in arrivals if at < arrivals[0] + 1.0) if arrivals else 0,
    }


def main() -> list[tuple[str, str]]:
    """Run the fan-out RUNS times (the fake in its own process), once more in the bot's loop; return the figures."""
    runs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(RUNS):
            runs.append(_rates(asyncio.run(fan_out())))
        in_loop = _rates(asyncio.run(fan_out(own_process=False)))

    def median(figure: Callable[[dict[str, Any]], float], form: str) -> str:
        values = [figure(run) for run in runs]
        return f"{statistics.median(values):{form}} (runs: {' '.join(f'{v:{form}}' for v in values)})"

    limited_by: Counter = Counter()
    for run in runs:
        limited_by.update(run["limited_by"])
    return [
        ("telegram fan-out chats x runs", f"{CHATS} x {RUNS}"),
        ("telegram fan-out msg/s, first to last message", median(lambda r: r["rate"], ".2f")),
        ("telegram fan-out msg/s / 30 (target >= 0.97)", median(lambda r: r["rate"] / TELEGRAM_LIMIT, ".3f")),
        ("telegram delivery job seconds, start to end", median(lambda r: r["elapsed"], ".1f")),
        ("telegram delivery job msg/s / 30, with its start-up",
         median(lambda r: r["sent"] / r["elapsed"] / TELEGRAM_LIMIT, ".3f")),
        ("telegram start-up: job start to first message (claims, chart, upload) s",
         median(lambda r: r["start_up"], ".2f")),
        ("telegram 429s received, all runs (target 0)",
         f"{sum(r['too_many_requests'] for r in runs)} {dict(limited_by) or ''}"),
        ("telegram most messages in any 1 s / in the first 1 s, worst run (limit 30)",
         f"{max(r['most_in_a_second'] for r in runs)} / {max(r['first_second'] for r in runs)}"),
        ("telegram messages counted from their whole answer (too few to compare, or held up)",
         median(lambda r: r["held_up"], ".0f")),
        ("telegram deliveries left for a retry, all runs", f"{sum(r['not_sent_first_drain'] for r in runs)}"),
        ("telegram messages with the chart / chart uploads, per run",
         f"{runs[-1]['photos']} / {runs[-1]['uploads']}"),
        ("telegram, the fake in the bot's own loop (1 run): msg/s / 30, 429s, most in 1 s",
         f"{in_loop['rate'] / TELEGRAM_LIMIT:.3f}, {in_loop['too_many_requests']}, {in_loop['most_in_a_second']}"),
    ]


if __name__ == "__main__":
    for name, value in main():
        print(f"{name}: {value}")
