"""`riskon send-test`, run as a user runs it, against the fake Telegram and Discord servers."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from storage import Store
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import TOKEN, FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
REPO = Path(__file__).resolve().parents[2]
ALICE, BLOCKED, VANISHED, FLOODED, GROUP = 111, 112, 113, 114, -1001


async def riskon(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the riskon CLI in a subprocess while the fakes keep serving in this loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg", **env},
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, out.decode(), err.decode()


def write_config(tmp_path: Path, telegram: FakeTelegram | None, discord: FakeDiscord | None) -> Path:
    channels: dict = {}
    if telegram is not None:
        channels["telegram"] = {"token": "${TELEGRAM_BOT_TOKEN}", "base_url": telegram.base_url}
    if discord is not None:
        channels["discord"] = {"token": "${DISCORD_BOT_TOKEN}", "api_base": discord.api_base,
                               "gateway": discord.gateway, "guild_ready_timeout": 0.05}
        channels["discord_webhook"] = {"hooks": {"announcements": {"url": "${ANNOUNCE_WEBHOOK}"}}}
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({
        "storage": {"path": str(tmp_path / "riskon.db")},
        "feeds": {"replay": {"kind": "replay", "path": str(tmp_path)}},
        "symbols": [{"id": "^RUT", "feed": "replay"}],
        "rules": [{"id": "rut_ath", "kind": "new_ath", "symbols": ["^RUT"]}],
        "channels": channels,
    }))
    return config


def subscribe(tmp_path: Path, channel: str, *chat_ids: object) -> None:
    store = Store.open(tmp_path / "riskon.db")
    for chat_id in chat_ids:
        store.subscribe(channel, str(chat_id))
    store.close()


async def test_send_test_reports_each_chat_in_the_services_own_words_and_fails_when_one_failed(tmp_path):
    telegram = await FakeTelegram().start()
    discord = await FakeDiscord(channel_window=0.2).start()
    try:
        for user in (ALICE, BLOCKED, VANISHED, FLOODED):
            telegram.add_private_chat(user)
        telegram.add_group(GROUP)
        telegram.chats[BLOCKED].blocked = True
        telegram.chats[VANISHED].gone = True
        telegram.inject("429", FLOODED)
        guild = discord.add_guild()
        alerts, locked = discord.channel(guild, "alerts"), discord.add_channel(guild, "locked")
        discord.make_gone(locked["id"], 403)
        webhook = discord.add_webhook(alerts["id"])
        config = write_config(tmp_path, telegram, discord)
        subscribe(tmp_path, "telegram", ALICE, BLOCKED, VANISHED, FLOODED, GROUP)
        subscribe(tmp_path, "discord", alerts["id"], locked["id"])
        code, out, err = await riskon("send-test", "--config", str(config), cwd=tmp_path,
                                      env={"TELEGRAM_BOT_TOKEN": TOKEN, "DISCORD_BOT_TOKEN": discord.token,
                                           "ANNOUNCE_WEBHOOK": webhook})
    finally:
        await telegram.stop()
        await discord.stop()

    assert code == 1, (out, err)
    lines = out.splitlines()
    assert "telegram: 5 chat(s)" in lines
    assert f"  {ALICE}: sent" in lines and f"  {GROUP}: sent" in lines
    assert f"  {BLOCKED}: forbidden: telegram: Forbidden: bot was blocked by the user" in lines
    assert f"  {VANISHED}: chat gone: telegram: Chat not found" in lines
    assert f"  {FLOODED}: rate-limited, retry after 1 s: telegram: flood limit, retry after 1 s" in lines
    assert f"  {alerts['id']}: sent" in lines
    assert any(line.startswith(f"  {locked['id']}: forbidden: discord channel {locked['id']}: 403") for line in lines)
    assert "  announcements: sent" in lines
    assert lines[-1] == "4 of 8 test message(s) sent; 4 failed"

    # Each chat that took it got one clearly-marked message with the chart attached.
    for chat in (ALICE, GROUP):
        [message] = telegram.messages_to(chat)
        assert message.photo and message.photo.startswith(b"\x89PNG")
        assert "TEST from riskon" in message.text and "not a market signal" in message.text
    [posted] = discord.sent_to(alerts["id"])[:1]
    assert posted.embeds[0]["title"].startswith("🧪 TEST from riskon") and posted.files
    assert len(discord.sent_to(alerts["id"])) == 2  # the bot's message and the webhook's
    # Nothing recorded: no alert, no delivery, and every subscription is still active.
    store = Store.open(tmp_path / "riskon.db")
    assert store.recent_alerts(10, include_silent=True) == []
    assert sum(store.outbox_counts().values()) == 0
    assert len(store.active_subscriptions("telegram")) == 5 and len(store.active_subscriptions("discord")) == 2
    store.close()


async def test_send_test_of_one_channel_exits_0_when_every_chat_took_it(tmp_path):
    telegram = await FakeTelegram().start()
    discord = await FakeDiscord().start()
    try:
        telegram.add_private_chat(ALICE)
        guild = discord.add_guild()
        alerts = discord.channel(guild, "alerts")
        config = write_config(tmp_path, telegram, discord)
        subscribe(tmp_path, "telegram", ALICE)
        subscribe(tmp_path, "discord", alerts["id"])
        code, out, err = await riskon("send-test", "--config", str(config), "--channel", "telegram", cwd=tmp_path,
                                      env={"TELEGRAM_BOT_TOKEN": TOKEN, "DISCORD_BOT_TOKEN": discord.token,
                                           "ANNOUNCE_WEBHOOK": discord.add_webhook(alerts["id"])})
    finally:
        await telegram.stop()
        await discord.stop()
    assert code == 0, (out, err)
    assert out.splitlines() == ["telegram: 1 chat(s)", f"  {ALICE}: sent", "1 of 1 test message(s) sent"]
    assert len(telegram.messages_to(ALICE)) == 1 and discord.messages == []
    # A one-off send never polls for updates: those belong to the running bot.
    assert telegram.call_counts["getUpdates"] == 0 and telegram.call_counts["setMyCommands"] == 0


async def test_send_test_without_subscribed_chats_says_so_and_exits_1(tmp_path):
    telegram = await FakeTelegram().start()
    try:
        config = write_config(tmp_path, telegram, None)
        code, out, err = await riskon("send-test", "--config", str(config), cwd=tmp_path,
                                      env={"TELEGRAM_BOT_TOKEN": TOKEN})
        wrong, _, wrong_err = await riskon("send-test", "--config", str(config), "--channel", "telegam",
                                           cwd=tmp_path, env={"TELEGRAM_BOT_TOKEN": TOKEN})
    finally:
        await telegram.stop()
    assert code == 1
    assert out.splitlines() == ["telegram: no subscribed chats; nothing sent (send /subscribe in a chat with the bot)",
                                "nothing was sent: no configured channel has a subscribed chat"]
    assert wrong == 1 and "--channel telegam: not a configured channel (did you mean 'telegram'?)" in wrong_err
