"""Benchmark: fan-out of one alert to 1,000 Telegram chats against a fake Bot API counting Telegram's windows.

Runs the real path: outbox rows recorded with the alert, the delivery job (bot/delivery.py), the Telegram
notifier (python-telegram-bot with riskon's pacer) over HTTP to tests/fakes/telegram_api.py, which answers 429
to a 31st message in any one second or a second message to a chat within a second (sliding windows, no
burst allowance), counted when each request arrives.
The alert carries its chart, as live alerts do: uploaded once, then sent by Telegram's file_id.
Figures: achieved messages/s as a fraction of 30/s (target >= 0.97), 429 answers (target 0), and the most
messages the fake saw in any one second and in the first second (target <= 30).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

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


async def fan_out(chats: int = CHATS) -> dict[str, float]:
    """Deliver one alert to `chats` private chats; return elapsed seconds, messages, 429s and retries."""
    fake = await FakeTelegram(overall_per_second=TELEGRAM_LIMIT, max_poll_seconds=1).start()
    folder = tempfile.mkdtemp(prefix="riskon-bench-")
    try:
        for chat_id in range(1, chats + 1):
            fake.add_private_chat(10_000 + chat_id)
        config = parse_config(f"""
feeds: {{replay: {{kind: replay, path: "{folder}"}}}}
symbols: [{{id: "^RUT", feed: replay}}]
rules: [{{id: rut_ath, kind: new_ath, symbols: ["^RUT"]}}]
channels:
  telegram: {{token: "${{TELEGRAM_BOT_TOKEN}}", base_url: "{fake.base_url}", poll_timeout_seconds: 1,
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
        await runtime.close()
        store.close()
    finally:
        await fake.stop()
    return {
        "elapsed": elapsed,
        "sent": len(fake.sent),
        "too_many_requests": fake.too_many_requests,
        "not_sent_first_drain": sum(n for (_, status), n in report.outcomes.items() if status != "sent"),
        "photos": sum(1 for message in fake.sent if message.photo),
        "uploads": fake.uploads,
        "most_in_a_second": fake.most_in_any_window(1.0),
        "limited_by": dict(fake.limited_by),
        "first_second": sum(1 for m in fake.sent if m.at < fake.sent[0].at + 1.0) if fake.sent else 0,
    }


def main() -> list[tuple[str, str]]:
    """Run the fan-out once and return its figures."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = asyncio.run(fan_out())
    rate = result["sent"] / result["elapsed"]
    return [
        ("telegram fan-out chats", f"{CHATS}"),
        ("telegram fan-out seconds", f"{result['elapsed']:.1f}"),
        ("telegram achieved msg/s", f"{rate:.2f}"),
        ("telegram rate / 30 msg/s (target >= 0.97)", f"{rate / TELEGRAM_LIMIT:.3f}"),
        ("telegram 429s received (target 0)", f"{result['too_many_requests']} {result['limited_by'] or ''}"),
        ("telegram most messages in any 1 s / in the first 1 s (limit 30)",
         f"{result['most_in_a_second']} / {result['first_second']}"),
        ("telegram deliveries left for a retry", f"{result['not_sent_first_drain']}"),
        ("telegram messages with the chart / chart uploads", f"{result['photos']} / {result['uploads']}"),
    ]


if __name__ == "__main__":
    for name, value in main():
        print(f"{name}: {value}")
