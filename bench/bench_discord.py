"""Benchmark: fan-out of one alert to 300 Discord channels and 5 webhooks, against a fake Discord enforcing 50 req/s.

Runs the real path: outbox rows recorded with the alert, the delivery job (bot/delivery.py), the Discord notifier
(discord.py with riskon's pacing) over HTTP to tests/fakes/discord_api.py.
Figures: achieved messages/s as a fraction of the configured pace (target >= 0.9), global 429 answers (target 0),
messages per chat (target exactly 1), and the median time to render an alert as embeds.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.events import AlertEvent
from alerts.messages import format_alert
from bot.config import parse_config
from bot.notifiers.base import OutgoingAlert
from bot.notifiers.discord.render import alert_message
from bot.runtime import Runtime
from storage import Store
from tests.fakes.discord_api import FakeDiscord, riskon_config

CHANNELS = 300
WEBHOOKS = 5
PACE = 40.0


def ath_event() -> AlertEvent:
    return AlertEvent("rut_ath", "new_ath", "^RUT", datetime(2026, 3, 2, tzinfo=timezone.utc),
                      {"price": 2450.5, "by": "close", "previous_ath": 2440.0, "previous_ath_time": "2025-11-10",
                       "days_since_previous_ath": 112, "pct_above_previous": 0.43, "fresh_episode": True})


async def fan_out() -> dict[str, float]:
    """Deliver one alert to every channel and webhook; return elapsed seconds, messages and 429s."""
    fake = await FakeDiscord(channel_window=5.0).start()
    folder = tempfile.mkdtemp(prefix="riskon-bench-")
    try:
        channels = []
        for guild_number in range(CHANNELS // 250 + 1):
            guild = fake.add_guild(f"server {guild_number}")
            channels += [fake.add_channel(guild, f"alerts-{i}")["id"] for i in range(min(250, CHANNELS - len(channels)))]
        alerts_channel = next(iter(fake.guilds.values()))["channels"][0]["id"]
        env = {"DISCORD_BOT_TOKEN": fake.token}
        hooks = {}
        for number in range(WEBHOOKS):
            env[f"HOOK_{number}"] = fake.add_webhook(alerts_channel)
            hooks[f"hook-{number}"] = {"url": f"${{HOOK_{number}}}"}
        bot = {"token": "${DISCORD_BOT_TOKEN}", "api_base": fake.api_base, "gateway": fake.gateway,
               "guild_ready_timeout": 0.05, "sync_commands": False, "messages_per_second": PACE}
        config = parse_config(riskon_config(folder, bot=bot, webhook={"hooks": hooks}), env=env)
        runtime = Runtime(config, Store.memory(), feeds={})
        await runtime.start()
        store = runtime.store
        for channel_id in channels:
            store.subscribe("discord", channel_id)
        event, now = ath_event(), datetime.now(timezone.utc)
        store.record_alert(event, format_alert(event), now, store.recipients(event, now))
        started = time.perf_counter()
        drains = 0
        while store.outbox_counts()["pending"] + store.outbox_counts()["retrying"] and drains < 20:
            await runtime.deliver()
            drains += 1
        elapsed = time.perf_counter() - started
        await runtime.close()
        per_chat = [len(fake.sent_to(c)) for c in channels]
        return {"elapsed": elapsed, "bot_messages": float(sum(per_chat)), "max_per_chat": float(max(per_chat)),
                "min_per_chat": float(min(per_chat)), "webhook_messages": float(len([m for m in fake.messages
                                                                                      if m.webhook_id])),
                "global_429s": float(fake.global_429s), "drains": float(drains)}
    finally:
        await fake.stop()


def render_median_us(rounds: int = 2000) -> float:
    """Return the median time to render an alert as Discord embeds, in microseconds."""
    event = ath_event()
    alert = OutgoingAlert((event,), format_alert(event))
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        json.dumps([e.to_dict() for e in alert_message(alert).embeds])
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1e6


def main() -> list[tuple[str, str]]:
    """Run the benchmark and return its figures."""
    result = asyncio.run(fan_out())
    rate = result["bot_messages"] / result["elapsed"]
    return [
        ("discord fan-out: channels + webhooks", f"{CHANNELS} + {WEBHOOKS}"),
        ("discord fan-out: elapsed", f"{result['elapsed']:.1f} s over {result['drains']:.0f} drain(s)"),
        ("discord fan-out: messages/s / configured pace", f"{rate:.1f}/s / {PACE:.0f}/s = {rate / PACE:.2f} (target >= 0.9)"),
        ("discord fan-out: global 429s received", f"{result['global_429s']:.0f} (target 0)"),
        ("discord fan-out: messages per channel (min-max)",
         f"{result['min_per_chat']:.0f}-{result['max_per_chat']:.0f} (target 1-1)"),
        ("discord fan-out: webhook messages", f"{result['webhook_messages']:.0f} (target {WEBHOOKS})"),
        ("discord alert -> embeds render, median", f"{render_median_us():.0f} µs"),
    ]


if __name__ == "__main__":
    for name, value in main():
        print(f"{name}: {value}")
