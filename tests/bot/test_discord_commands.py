"""Slash commands over the real gateway and REST API of a fake Discord, with discord.py: who may do what."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from alerts.bars import Bar
from alerts.events import AlertEvent
from alerts.messages import format_alert
from bot.commands import SPECS
from bot.config import parse_config
from bot.runtime import Runtime
from storage import Store
from tests.fakes.discord_api import MANAGE_CHANNELS, MEMBER_PERMISSIONS, FakeDiscord, riskon_config

ADMIN_ID = "1180000000000009999"
MANAGER = MEMBER_PERMISSIONS | MANAGE_CHANNELS
NOW = datetime(2026, 3, 2, 21, 0, tzinfo=timezone.utc)
SLASH = {"help", "status", "subscribe", "unsubscribe", "list", "alerts", "rules", "mute", "unmute", "chart",
         "pause", "resume", "reload", "health", "fragility"}


@pytest.fixture
async def fake():
    server = await FakeDiscord(channel_window=0.5).start()
    yield server
    await server.stop()


@pytest.fixture
def guild(fake):
    guild = fake.add_guild(roles=("alert-managers", "traders"))
    fake.add_channel(guild, "market-talk")
    fake.add_channel(guild, "btc-thread", parent_id=fake.channel(guild, "alerts")["id"])
    return guild


async def start_runtime(fake, tmp_path, **bot_settings):
    bot = {"token": "${DISCORD_BOT_TOKEN}", "api_base": fake.api_base, "gateway": fake.gateway,
           "guild_ready_timeout": 0.05, "ready_timeout_seconds": 5, "manager_roles": ["Alert-Managers"], **bot_settings}
    config = parse_config(riskon_config(tmp_path, bot=bot, admins=(f"discord:{ADMIN_ID}",)),
                          env={"DISCORD_BOT_TOKEN": fake.token})
    runtime = Runtime(config, Store.memory(), feeds={}, clock=lambda: NOW)
    await runtime.start()
    assert runtime.notifiers["discord"].ready.is_set()
    return runtime


@pytest.fixture
# Not the shared `runtime` fixture (tests/conftest.py): started against the fake Discord server.
async def runtime(fake, guild, tmp_path):
    runtime = await start_runtime(fake, tmp_path)
    yield runtime
    await runtime.close()


async def say(fake, guild, command, options=None, channel="alerts", **member):
    answer = await fake.interact(guild, fake.channel(guild, channel), command, options, **member)
    return fake.text_of(answer)


async def test_slash_commands_are_synced_globally_with_autocomplete(fake, runtime):
    synced = {c["name"]: c for c in fake.synced_commands["global"]}
    assert set(synced) == SLASH
    assert all(c["description"] == SPECS[name].description[:100] for name, c in synced.items())
    what = next(o for o in synced["subscribe"]["options"] if o["name"] == "what")
    assert what["autocomplete"] is True and what["required"] is False
    assert next(o for o in synced["alerts"]["options"])["max_value"] == 50


async def test_slash_commands_sync_to_configured_servers(fake, guild, tmp_path):
    runtime = await start_runtime(fake, tmp_path, guilds=[int(guild["id"])])
    try:
        assert "global" not in fake.synced_commands
        assert {c["name"] for c in fake.synced_commands[guild["id"]]} == SLASH
        assert "Prices" in (await say(fake, guild, "help"))
    finally:
        await runtime.close()


async def test_everyone_may_read(fake, guild, runtime):
    status = await say(fake, guild, "status")
    assert "^RUT" in status and "BTC" in status and "Bot: running" in status
    assert "no data yet" in await say(fake, guild, "status", {"symbol": "rut"})
    assert "rut\\_ath" in await say(fake, guild, "rules")  # Markdown escaped: rule ids keep their underscores
    assert "not subscribed" in await say(fake, guild, "list")
    assert "No alerts yet" in await say(fake, guild, "alerts")
    assert "Unknown symbol 'NOPE'" in await say(fake, guild, "status", {"symbol": "NOPE"})
    assert "Usage: /status" in await say(fake, guild, "status", {"symbol": "NOPE"})


@pytest.mark.parametrize("command, options", [
    ("subscribe", None), ("subscribe", {"what": "BTC"}), ("unsubscribe", None), ("mute", {"duration": "6h"}),
    ("unmute", None),
])
async def test_members_without_manage_channels_cannot_change_subscriptions(fake, guild, runtime, command, options):
    reply = await say(fake, guild, command, options, roles=("traders",))
    assert reply.startswith(f"Only members with Manage Channels or the Alert-Managers role can use /{command} "
                            "in this server.")
    assert runtime.store.active_subscriptions("discord") == []


async def test_manage_channels_member_subscribes_the_channel(fake, guild, runtime):
    alerts = fake.channel(guild, "alerts")
    assert "Subscribed this channel: every alert" in await say(fake, guild, "subscribe", permissions=MANAGER)
    subscription = runtime.store.subscription("discord", alerts["id"])
    assert subscription is not None and subscription.active and subscription.rules == ()
    assert "symbols BTC" in await say(fake, guild, "subscribe", {"what": "btc"}, permissions=MANAGER)
    assert "every alert" not in await say(fake, guild, "list")  # anyone can read the channel's subscription
    assert "Muted BTC" in await say(fake, guild, "mute", {"duration": "6h", "what": "BTC"}, permissions=MANAGER)
    assert "Muted: BTC until" in await say(fake, guild, "list")
    assert "Lifted 1 mute" in await say(fake, guild, "unmute", permissions=MANAGER)
    assert "not a duration" in await say(fake, guild, "mute", {"duration": "soon"}, permissions=MANAGER)
    assert "Unsubscribed" in await say(fake, guild, "unsubscribe", permissions=MANAGER)
    assert runtime.store.active_subscriptions("discord") == []
    # Another channel of the server was never touched.
    assert runtime.store.subscription("discord", fake.channel(guild, "market-talk")["id"]) is None


async def test_a_manager_role_from_config_may_change_subscriptions(fake, guild, runtime):
    reply = await say(fake, guild, "subscribe", {"what": "rut_ath"}, channel="market-talk", roles=("alert-managers",))
    assert "rules rut\\_ath" in reply
    assert runtime.store.subscription("discord", fake.channel(guild, "market-talk")["id"]).rules == ("rut_ath",)


async def test_subscribe_warns_when_the_bot_cannot_post_here(fake, guild, runtime):
    reply = await say(fake, guild, "subscribe", permissions=MANAGER, bot_permissions=MEMBER_PERMISSIONS)
    assert "Subscribed" in reply
    assert "riskon lacks Embed Links, Attach Files here" in reply
    assert "lacks" not in await say(fake, guild, "subscribe", permissions=MANAGER)
    assert "lacks" not in await say(fake, guild, "subscribe", channel="market-talk", bot_permissions=MEMBER_PERMISSIONS)


async def test_a_thread_has_its_own_subscription(fake, guild, runtime):
    alerts, thread = fake.channel(guild, "alerts"), fake.channel(guild, "btc-thread")
    assert "this thread" in await say(fake, guild, "subscribe", {"what": "BTC"}, channel="btc-thread",
                                     permissions=MANAGER)
    subscription = runtime.store.subscription("discord", alerts["id"], thread["id"])
    assert subscription is not None and subscription.symbols == ("BTC",)
    assert runtime.store.subscription("discord", alerts["id"]) is None


async def test_a_dm_with_the_bot_is_its_users_own_chat(fake, guild, runtime):
    dm = fake.add_dm()
    answer = await fake.interact(None, dm, "subscribe", {"what": "BTC"})
    assert "Subscribed this DM: symbols BTC" in fake.text_of(answer)
    assert runtime.store.subscription("discord", dm["id"]).symbols == ("BTC",)
    store = runtime.store
    event = AlertEvent("btc_ath", "new_ath", "BTC", NOW, {"price": 100000.0})
    store.record_alert(event, "📈 BTC new all-time high", NOW, store.recipients(event, NOW))
    assert (await runtime.deliver()).outcomes == {("discord", "sent"): 1}
    assert fake.sent_to(dm["id"])[0].embeds[0]["title"] == "📈 BTC new all-time high"


async def test_autocomplete_offers_rules_and_symbols(fake, guild, runtime):
    answer = await fake.interact(guild, fake.channel(guild, "alerts"), "subscribe", {"what": "bt"}, autocomplete="what")
    assert answer["type"] == 8
    assert [c["value"] for c in answer["data"]["choices"]] == ["btc_ath", "BTC"]
    answer = await fake.interact(guild, fake.channel(guild, "alerts"), "status", {"symbol": ""}, autocomplete="symbol")
    assert [c["value"] for c in answer["data"]["choices"]] == ["^RUT", "BTC"]
    answer = await fake.interact(guild, fake.channel(guild, "alerts"), "mute", {"duration": "h"},
                                 autocomplete="duration")
    assert [c["value"] for c in answer["data"]["choices"]] == ["1h", "6h", "12h"]


@pytest.mark.parametrize("command", ["pause", "resume", "reload", "health", "fragility"])
async def test_admin_commands_only_for_admin_ids(fake, guild, runtime, command):
    # Manage Channels is not enough: riskon's admins are listed by user id in config.
    assert "for riskon's admins only" in await say(fake, guild, command, permissions=MANAGER)
    reply = await say(fake, guild, command, user_id=ADMIN_ID)
    assert "admins only" not in reply and reply


async def test_admin_pauses_and_resumes(fake, guild, runtime):
    assert "Paused" in await say(fake, guild, "pause", user_id=ADMIN_ID)
    assert runtime.paused
    assert "PAUSED" in await say(fake, guild, "status")
    assert "Resumed" in await say(fake, guild, "resume", user_id=ADMIN_ID)
    assert not runtime.paused


async def test_long_replies_are_split_into_messages_within_2000_characters(fake, guild, runtime):
    store = runtime.store
    for day in range(1, 29):
        event = AlertEvent("btc_ath", "new_ath", "BTC", datetime(2026, 2, day, tzinfo=timezone.utc),
                           {"price": 90000.0 + day, "previous_ath": 89000.0, "previous_ath_time": "2026-01-01",
                            "pct_above_previous": 1.2, "days_since_previous_ath": 40, "by": "close"})
        store.record_alert(event, format_alert(event) + "\n" + "detail " * 30, NOW)
    await fake.interact(guild, fake.channel(guild, "alerts"), "alerts", {"count": 28})
    replies = await fake.wait_for_replies(fake.last_interaction_id, 3)
    texts = [fake.text_of(r) for r in replies]
    assert all(0 < len(text) <= 2000 for text in texts)
    assert all(r.get("followup") for r in replies[1:])  # the first answers the interaction, the rest follow up
    assert "BTC new all-time high: close 90,028.00" in texts[0]


async def test_a_slow_answer_is_deferred_then_sent(fake, guild, tmp_path):
    runtime = await start_runtime(fake, tmp_path, answer_within_seconds=0)
    try:
        answer = await fake.interact(guild, fake.channel(guild, "alerts"), "status")
        deferral = fake.responses[fake.last_interaction_id][0]
        assert deferral["type"] == 5  # "riskon is thinking…"
        assert answer.get("followup") and "Bot: running" in fake.text_of(answer)
    finally:
        await runtime.close()


async def test_chart_reply_carries_the_png(fake, guild, runtime):
    closes = [80_000.0 + 100 * day for day in range(120)]
    runtime.store.upsert_bars("BTC", [Bar(NOW - timedelta(days=120 - day), c, c + 50, c - 50, c, 1.0)
                                      for day, c in enumerate(closes)])
    answer = await fake.interact(guild, fake.channel(guild, "alerts"), "chart", {"symbol": "BTC"})
    assert fake.text_of(answer).startswith("BTC: last close 91,900.00")
    [png] = answer["files"].values()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000
    assert "Usage: /chart" in await say(fake, guild, "chart", {"symbol": "XYZ"})


async def test_commands_work_again_after_the_gateway_drops(fake, guild, runtime):
    await fake.drop_gateway()
    await asyncio.wait_for(fake.resumed.wait(), 10)  # discord.py resumes its session
    assert "Bot: running" in await say(fake, guild, "status")


async def test_heartbeats_are_answered(tmp_path):
    fake = await FakeDiscord(heartbeat_interval_ms=100).start()
    fake.add_guild()
    runtime = await start_runtime(fake, tmp_path)
    try:
        for _ in range(100):
            if fake.heartbeats_answered >= 2:
                break
            await asyncio.sleep(0.05)
        assert fake.heartbeats_answered >= 2
        assert runtime.notifiers["discord"].client.is_ready()
    finally:
        await runtime.close()
        await fake.stop()


def ephemeral(answer) -> bool:
    return bool((answer.get("data") or {}).get("flags", 0) & 64)


async def test_help_lists_the_slash_commands_with_their_option_names(fake, guild, runtime):
    text = await say(fake, guild, "help")
    assert "/start" not in text  # Telegram's greeting; no such slash command
    lines = text.splitlines()
    assert lines[0] == "/help — List the commands"
    assert "/mute duration:DURATION [what:RULE\\|SYMBOL] — Silence alerts here for a while, e.g. /mute 6h BTC" in lines
    assert "/alerts [count:N] — Show the N most recent alerts (default 5)" in lines
    assert "pause" not in text  # admin commands: for admins only
    assert "/pause — " in await say(fake, guild, "help", user_id=ADMIN_ID)


async def test_usage_errors_name_the_options(fake, guild, runtime):
    text = await say(fake, guild, "mute", {"duration": "soon"}, permissions=MANAGER)
    assert text == "'soon' is not a duration like 30m, 6h or 2d.\nUsage: /mute duration:DURATION [what:RULE\\|SYMBOL]"


async def test_refusals_usage_errors_and_confirmations_are_shown_to_the_sender_only(fake, guild, runtime):
    channel = fake.channel(guild, "alerts")
    refused = await fake.interact(guild, channel, "subscribe", roles=("traders",))
    usage = await fake.interact(guild, channel, "mute", {"duration": "soon"}, permissions=MANAGER)
    admin_only = await fake.interact(guild, channel, "pause", permissions=MANAGER)
    subscribed = await fake.interact(guild, channel, "subscribe", permissions=MANAGER)
    muted = await fake.interact(guild, channel, "mute", {"duration": "6h"}, permissions=MANAGER)
    status = await fake.interact(guild, channel, "status")
    assert [ephemeral(a) for a in (refused, usage, admin_only, subscribed, muted)] == [True] * 5
    assert fake.text_of(muted).startswith("Muted every alert in this channel until ")
    assert not ephemeral(status), "the market is for everyone in the channel"


async def test_admin_commands_are_hidden_from_members_and_subscription_commands_need_manage_channels(fake, guild,
                                                                                                    tmp_path):
    runtime = await start_runtime(fake, tmp_path, manager_roles=[])
    await runtime.close()
    # discord.py sends the permission bits as a number; Discord documents a string: compare the bits.
    synced = {c["name"]: c["default_member_permissions"] for c in fake.synced_commands["global"]}
    synced = {name: None if bits is None else str(bits) for name, bits in synced.items()}
    admin = ("pause", "resume", "reload", "health", "fragility")
    assert {name: synced[name] for name in admin} == dict.fromkeys(admin, "32")  # Manage Server
    assert {name: synced[name] for name in ("subscribe", "unsubscribe", "mute", "unmute")} == dict.fromkeys(
        ("subscribe", "unsubscribe", "mute", "unmute"), "16")  # Manage Channels
    assert synced["status"] is None and synced["help"] is None


async def test_manager_roles_keep_the_subscription_commands_visible(fake, runtime):
    synced = {c["name"]: c["default_member_permissions"] for c in fake.synced_commands["global"]}
    assert synced["subscribe"] is None and str(synced["pause"]) == "32"


async def test_slash_command_options_are_the_command_layers_arguments(fake, runtime):
    for command in fake.synced_commands["global"]:
        spec = SPECS[command["name"]]
        assert [o["name"] for o in command.get("options", [])] == [a.option for a in spec.arguments]
        assert [o.get("required", False) for o in command.get("options", [])] == [a.required for a in spec.arguments]


async def test_commands_are_synced_only_when_they_changed(fake, guild, tmp_path):
    def syncs() -> int:
        return sum(1 for method, path in fake.requests if method == "PUT" and path.endswith("/commands"))

    store = Store.open(tmp_path / "riskon.db")
    bot = {"token": "${DISCORD_BOT_TOKEN}", "api_base": fake.api_base, "gateway": fake.gateway,
           "guild_ready_timeout": 0.05, "ready_timeout_seconds": 5}
    for settings, expected in (({}, 1), ({}, 1), ({"manager_roles": ["traders"]}, 2), ({"guilds": [guild["id"]]}, 3)):
        config = parse_config(riskon_config(tmp_path, bot={**bot, **settings}), env={"DISCORD_BOT_TOKEN": fake.token})
        runtime = Runtime(config, store, feeds={}, clock=lambda: NOW)
        await runtime.start()
        await runtime.close()
        assert syncs() == expected, settings
    store.close()
