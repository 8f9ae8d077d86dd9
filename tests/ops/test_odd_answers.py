"""Odd answers from the chat services: what a 429 or an error page says never parks or loses an alert."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from alerts.events import AlertEvent
from alerts.messages import format_alert
from bot.config import parse_config
from bot.runtime import Runtime
from storage import Store
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_api import riskon_config as discord_config
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.fakes.telegram_api import riskon_config as telegram_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PTB 22: retry_after int -> timedelta

CHAT = 111
NOW = datetime(2026, 3, 2, 21, tzinfo=timezone.utc)


def rut_high() -> AlertEvent:
    return AlertEvent("rut_ath", "new_ath", "^RUT", datetime(2026, 3, 2, tzinfo=timezone.utc),
                      {"price": 2500.0, "by": "close", "previous_ath": 2442.74, "previous_ath_time": "2021-11-08",
                       "days_since_previous_ath": 1400, "pct_above_previous": 2.3})


@pytest.mark.parametrize("retry_after, earliest, latest", [
    ("99999999999", timedelta(days=1), timedelta(days=1)),  # was retried in the year 5195
    ("-5", timedelta(0), timedelta(seconds=60)),
])
async def test_a_429_with_an_absurd_retry_after_is_retried_within_a_day(store, tmp_path, retry_after, earliest,
                                                                        latest):
    fake = await FakeTelegram(max_poll_seconds=0.3).start()
    fake.add_private_chat(CHAT)
    fake.inject(f"429:{retry_after}", CHAT)
    schedule = {"retry_base_seconds": 1, "retry_max_seconds": 60}
    config = parse_config(telegram_config(fake, tmp_path, schedule=schedule), env={"TELEGRAM_BOT_TOKEN": TOKEN})
    runtime = Runtime(config, store, feeds={}, clock=lambda: NOW)
    try:
        await runtime.start()
        store.subscribe("telegram", str(CHAT))
        alert = rut_high()
        store.record_alert(alert, format_alert(alert), NOW, store.recipients(alert, NOW))
        report = await runtime.deliver()
        (status, next_attempt), = store.db.execute("select status, next_attempt_at from deliveries").fetchall()
    finally:
        await runtime.close()
        await fake.stop()
    assert report.outcomes == {("telegram", "retry"): 1}
    assert status == "retrying"
    assert NOW + earliest <= datetime.fromisoformat(next_attempt) <= NOW + latest


@pytest.mark.parametrize("command, options, error", [
    ("backtest", None, "CommandNotFound"),  # registered by another instance or an older version, not riskon's now
    ("mute", None, "CommandSignatureMismatch"),  # an older copy of /mute, without its required duration
])
async def test_a_slash_command_discord_holds_out_of_date_is_answered_and_synced_at_the_next_start(
        tmp_path, caplog, command, options, error):
    # Were left unanswered ("The application did not respond") with a traceback in the log.
    fake = await FakeDiscord(channel_window=0.5).start()
    guild = fake.add_guild()
    bot = {"token": "${DISCORD_BOT_TOKEN}", "api_base": fake.api_base, "gateway": fake.gateway,
           "guild_ready_timeout": 0.05, "ready_timeout_seconds": 5}
    config = parse_config(discord_config(tmp_path, bot=bot), env={"DISCORD_BOT_TOKEN": fake.token})
    store = Store.memory()
    runtime = Runtime(config, store, feeds={}, clock=lambda: NOW)
    try:
        await runtime.start()
        synced_at_start = dict(store.db.execute("select key, value from settings").fetchall())
        answer = await fake.interact(guild, fake.channel(guild, "alerts"), command, options, timeout=10)
        after = dict(store.db.execute("select key, value from settings").fetchall())
    finally:
        await runtime.close()
        await fake.stop()
    assert fake.text_of(answer) == f"/{command} is out of date on Discord's side. Send /help for riskon's commands."
    assert answer["data"]["flags"] == 64  # only the sender sees it
    assert any(v for k, v in synced_at_start.items() if k.startswith("discord.commands."))
    assert not any(v for k, v in after.items() if k.startswith("discord.commands.")), "the next start must sync"
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith(("bot", "discord"))
                and r.levelno >= logging.WARNING]
    assert warnings == [f"discord: /{command} in channel {fake.channel(guild, 'alerts')['id']} does not match "
                        f"riskon's commands ({error}); they will be synced at the next start"]
    assert not any(r.exc_info for r in caplog.records)
