"""Slow and rate-limited chats hold up only themselves, and a service's retry_after is honoured however long.

Telegram: the scheduler's real delivery task (every second) fans one alert out to 52 chats; one answers 429 with
retry_after 40 s, one hangs for 8 s before failing. The other 50 are served by the first tick, long before the
hang ends (in a fraction of a second; the hang is long so that a loaded machine cannot blur the two); the 429
chat is not asked again before its 40 s (the test does not wait them out); the task never skips a tick for a
send still running (the slow chat is retried by a later tick). Discord: a webhook answering 429 with retry_after
40 s is retried after 40 s, not at the send timeout, while another webhook gets its alert at once.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from alerts.events import AlertEvent
from alerts.messages import format_alert
from bot.config import parse_config
from bot.runtime import Runtime
from bot.scheduler import Scheduler
from tests.fakes.discord_api import FakeDiscord, riskon_config
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.fakes.telegram_api import riskon_config as telegram_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LIMITED, SLOW = 800_000, 800_001
OTHERS = range(800_002, 800_052)
HANG_SECONDS = 8.0
RETRY_AFTER = 40


def event(symbol: str, rule: str) -> AlertEvent:
    return AlertEvent(rule, "new_ath", symbol, datetime(2026, 3, 2, tzinfo=timezone.utc),
                      {"price": 2450.5, "by": "close", "previous_ath": 2440.0, "previous_ath_time": "2025-11-10",
                       "days_since_previous_ath": 112, "pct_above_previous": 0.43})


def record(runtime: Runtime, alert: AlertEvent, now: datetime) -> None:
    store = runtime.store
    store.record_alert(alert, format_alert(alert), now, store.recipients(alert, now))


def sends_to(fake: FakeTelegram, chat_id: int) -> int:
    return sum(1 for method, params in fake.calls if method == "sendMessage" and params.get("chat_id") == str(chat_id))


async def test_one_limited_and_one_slow_telegram_chat_delay_only_themselves(store, tmp_path):
    fake = await FakeTelegram(overall_per_second=500, hang_seconds=HANG_SECONDS, max_poll_seconds=0.3).start()
    for chat_id in (LIMITED, SLOW, *OTHERS):
        fake.add_private_chat(chat_id)
    fake.inject(f"429:{RETRY_AFTER}", LIMITED)
    fake.inject("timeout", SLOW)
    config = parse_config(telegram_config(
        fake, tmp_path, asset_class="index",
        schedule={"deliver_every_seconds": 1, "retry_base_seconds": 1, "retry_max_seconds": 60},
        telegram={"request_timeout_seconds": 12, "messages_per_second": 200}), env={"TELEGRAM_BOT_TOKEN": TOKEN})
    runtime = Runtime(config, store, feeds={})
    for chat_id in (LIMITED, SLOW, *OTHERS):
        runtime.store.subscribe("telegram", str(chat_id))
    now = datetime.now(timezone.utc)
    record(runtime, event("^RUT", "rut_ath"), now)
    scheduler = Scheduler(runtime)
    loop = asyncio.get_running_loop()
    try:
        await runtime.start()
        started = loop.time()
        scheduler.start()
        await fake.wait_until(lambda: all(fake.messages_to(c) for c in OTHERS), timeout=HANG_SECONDS)
        served_in = loop.time() - started
        assert not fake.messages_to(SLOW), "the slow chat's send still hangs: the others did not wait for it"
        # The hang ends at ~8 s; a later tick of the delivery task retries it after the 1 s back-off. Waiting on
        # the outcome (bounded well inside the 40 s retry_after) keeps this honest on a loaded machine.
        await fake.wait_until(lambda: bool(fake.messages_to(SLOW)), timeout=HANG_SECONDS + 15)
    finally:
        await scheduler.shutdown()
        rows = dict(runtime.store.db.execute("select chat_id, next_attempt_at from deliveries "
                                             "where status = 'retrying'").fetchall())
        await runtime.close()
        await fake.stop()
    print(f"\n50 chats served {served_in:.2f} s after the first tick (interval 1 s) while one chat hung "
          f"{HANG_SECONDS:.0f} s and one was told to wait {RETRY_AFTER} s")
    assert sends_to(fake, LIMITED) == 1, "asked again before Telegram's retry_after"
    assert datetime.fromisoformat(rows[str(LIMITED)]) >= now + timedelta(seconds=RETRY_AFTER)
    assert fake.messages_to(SLOW), "the slow chat is retried once its own send gave up"


async def test_a_webhook_behind_a_long_429_waits_what_discord_said_and_holds_no_other(store, tmp_path):
    fake = await FakeDiscord().start()
    guild = fake.add_guild()
    alerts = fake.channel(guild, "alerts")
    env = {"LIMITED": fake.add_webhook(alerts["id"]), "OTHER": fake.add_webhook(alerts["id"])}
    limited_id = env["LIMITED"].split("/")[-2]
    fake.rate_limit_next(limited_id, RETRY_AFTER)
    webhook = {"hooks": {"limited": {"url": "${LIMITED}"}, "other": {"url": "${OTHER}"}},
               "send_timeout_seconds": 5, "api_base": fake.api_base}
    config = parse_config(riskon_config(tmp_path, webhook=webhook), env=env)
    now = datetime(2026, 3, 2, 21, tzinfo=timezone.utc)
    runtime = Runtime(config, store, feeds={}, clock=lambda: now)
    try:
        await runtime.start()
        record(runtime, event("BTC", "btc_ath"), now)
        report = await runtime.deliver()
        rows = dict(runtime.store.db.execute(
            "select chat_id, next_attempt_at from deliveries where status = 'retrying'").fetchall())
    finally:
        await runtime.close()
        await fake.stop()
    assert report.outcomes == {("discord_webhook", "sent"): 1, ("discord_webhook", "retry"): 1}
    assert [m.webhook_id for m in fake.messages] == [env["OTHER"].split("/")[-2]]
    assert datetime.fromisoformat(rows["limited"]) >= now + timedelta(seconds=RETRY_AFTER)
    limited_posts = [path for method, path in fake.requests if method == "POST" and limited_id in path]
    assert len(limited_posts) == 1, "discord.py must not be left to retry it inside the send"


async def test_a_discord_channel_behind_a_long_429_holds_none_of_fifty_others(store, tmp_path):
    fake = await FakeDiscord(channel_window=0.2).start()
    guild = fake.add_guild()
    limited = fake.add_channel(guild, "limited")["id"]
    others = [fake.add_channel(guild, f"chat-{i}")["id"] for i in range(50)]
    fake.rate_limit_next(limited, RETRY_AFTER)
    bot = {"token": "${DISCORD_BOT_TOKEN}", "api_base": fake.api_base, "gateway": fake.gateway,
           "guild_ready_timeout": 0.05, "ready_timeout_seconds": 5}
    config = parse_config(riskon_config(tmp_path, bot=bot), env={"DISCORD_BOT_TOKEN": fake.token})
    now = datetime(2026, 3, 2, 21, tzinfo=timezone.utc)
    runtime = Runtime(config, store, feeds={}, clock=lambda: now)
    try:
        await runtime.start()
        for channel in (limited, *others):
            runtime.store.subscribe("discord", channel)
        record(runtime, event("BTC", "btc_ath"), now)
        report = await runtime.deliver()
        rows = dict(runtime.store.db.execute(
            "select chat_id, next_attempt_at from deliveries where status = 'retrying'").fetchall())
    finally:
        await runtime.close()
        await fake.stop()
    assert report.outcomes == {("discord", "sent"): 50, ("discord", "retry"): 1}, rows
    assert all(len(fake.sent_to(c)) == 1 for c in others) and fake.sent_to(limited) == []
    assert list(rows) == [limited]
    assert datetime.fromisoformat(rows[limited]) >= now + timedelta(seconds=RETRY_AFTER)
