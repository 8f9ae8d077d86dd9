"""Webhook-only Discord channels: alerts with no bot token, over real HTTP to a fake Discord webhook endpoint."""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta, timezone

import pytest

from alerts.errors import RiskonError
from alerts.events import AlertEvent
from alerts.messages import format_alert
from bot.config import ConfigError, parse_config
from bot.logs import setup_logging
from bot.runtime import Runtime
from storage import Store
from tests.fakes.discord_api import FakeDiscord, riskon_config

NOW = datetime(2026, 3, 2, 21, 0, tzinfo=timezone.utc)


def event(symbol: str) -> AlertEvent:
    rule = "rut_ath" if symbol == "^RUT" else "btc_ath"
    return AlertEvent(rule, "new_ath", symbol, datetime(2026, 3, 2, tzinfo=timezone.utc),
                      {"price": 2450.5, "by": "close", "previous_ath": 2440.0, "previous_ath_time": "2025-11-10",
                       "days_since_previous_ath": 112, "pct_above_previous": 0.43})


@pytest.fixture
async def fake():
    server = await FakeDiscord().start()
    server.guild = server.add_guild()
    yield server
    await server.stop()


def build(fake, tmp_path, hooks, env, store=None, api_base=True) -> Runtime:
    webhook = {"hooks": hooks, "send_timeout_seconds": 5}
    if api_base:
        webhook["api_base"] = fake.api_base
    config = parse_config(riskon_config(tmp_path, webhook=webhook), env=env)
    return Runtime(config, store or Store.memory(), feeds={}, clock=lambda: NOW)


def record(runtime: Runtime, alert: AlertEvent) -> None:
    store = runtime.store
    store.record_alert(alert, format_alert(alert), NOW, store.recipients(alert, NOW))


async def test_a_webhook_channel_gets_alerts_with_no_bot_token(fake, tmp_path):
    alerts = fake.channel(fake.guild, "alerts")
    thread = fake.add_channel(fake.guild, "crypto-thread", parent_id=alerts["id"])
    env = {"ALL_URL": fake.add_webhook(alerts["id"]), "BTC_URL": fake.add_webhook(alerts["id"])}
    runtime = build(fake, tmp_path, {
        "everything": {"url": "${ALL_URL}", "username": "riskon alerts"},
        "btc-only": {"url": "${BTC_URL}", "symbols": ["BTC"], "thread_id": int(thread["id"])},
    }, env)
    await runtime.start()
    try:
        record(runtime, event("^RUT"))
        record(runtime, event("BTC"))
        assert (await runtime.deliver()).outcomes == {("discord_webhook", "sent"): 3}
        assert (await runtime.deliver()).outcomes == {}
    finally:
        await runtime.close()
    everything, btc_only = (url.split("/")[-2] for url in (env["ALL_URL"], env["BTC_URL"]))
    received = [(m.webhook_id, tuple(e["title"].split(" new")[0] for e in m.embeds), m.thread_id)
                for m in fake.messages]
    # Both alerts fired in one cycle: the catch-all channel gets them as one message of two embeds.
    assert sorted(received) == sorted([(everything, ("📈 ^RUT", "📈 BTC"), ""),
                                       (btc_only, ("📈 BTC",), thread["id"])])
    assert all(m.payload.get("username") == "riskon alerts" for m in fake.messages if m.webhook_id == everything)
    # No bot ever logged in: every request was a webhook execution.
    assert {path.split("/")[3] for _, path in fake.requests} == {"webhooks"}


async def test_a_deleted_webhook_stops_its_subscription(fake, tmp_path):
    url = fake.add_webhook(fake.channel(fake.guild, "alerts")["id"])
    runtime = build(fake, tmp_path, {"announce": {"url": "${HOOK}"}}, {"HOOK": url})
    await runtime.start()
    try:
        fake.delete_webhook(url)
        record(runtime, event("BTC"))
        assert (await runtime.deliver()).outcomes == {("discord_webhook", "failed"): 1}
        assert not runtime.store.subscription("discord_webhook", "announce").active
        [error] = runtime.store.db.execute("select last_error from deliveries").fetchone()
        assert "404" in error and "Unknown Webhook" in error and url.split("/")[-1] not in error
    finally:
        await runtime.close()


async def test_a_webhook_rate_limit_is_waited_out(fake, tmp_path):
    url = fake.add_webhook(fake.channel(fake.guild, "alerts")["id"])
    runtime = build(fake, tmp_path, {"announce": {"url": "${HOOK}"}}, {"HOOK": url})
    await runtime.start()
    try:
        fake.rate_limit_next(url.split("/")[-2], 0.1, 0.1)
        record(runtime, event("BTC"))
        assert (await runtime.deliver()).outcomes == {("discord_webhook", "sent"): 1}
        assert len(fake.messages) == 1
        assert len([p for m, p in fake.requests if m == "POST"]) == 3
    finally:
        await runtime.close()


async def test_a_long_webhook_rate_limit_goes_back_to_the_outbox(store, fake, tmp_path):
    url = fake.add_webhook(fake.channel(fake.guild, "alerts")["id"])
    webhook = {"hooks": {"announce": {"url": "${HOOK}"}}, "send_timeout_seconds": 0.3, "api_base": fake.api_base}
    config = parse_config(riskon_config(tmp_path, webhook=webhook), env={"HOOK": url})
    runtime = Runtime(config, store, feeds={}, clock=lambda: NOW)
    await runtime.start()
    try:
        fake.rate_limit_next(url.split("/")[-2], 30.0)
        record(runtime, event("BTC"))
        assert (await runtime.deliver()).outcomes == {("discord_webhook", "retry"): 1}
        error, next_attempt = runtime.store.db.execute("select last_error, next_attempt_at from deliveries").fetchone()
        assert "rate limited for 30 s" in error and fake.messages == []
        assert datetime.fromisoformat(next_attempt) >= NOW + timedelta(seconds=30), "retried when Discord said"
    finally:
        await runtime.close()


async def test_a_webhook_removed_from_config_stops_receiving(fake, tmp_path):
    channel = fake.channel(fake.guild, "alerts")["id"]
    env = {"A": fake.add_webhook(channel), "B": fake.add_webhook(channel)}
    store = Store.open(tmp_path / "riskon.db")
    build(fake, tmp_path, {"a": {"url": "${A}"}, "b": {"url": "${B}"}}, env, store)
    assert {s.chat_id for s in store.active_subscriptions("discord_webhook")} == {"a", "b"}
    build(fake, tmp_path, {"a": {"url": "${A}", "symbols": ["BTC"]}}, env, store)
    [only] = store.active_subscriptions("discord_webhook")
    assert (only.chat_id, only.symbols) == ("a", ("BTC",))
    store.close()


def test_webhook_config_errors_name_the_key_and_never_show_the_url(tmp_path):
    secret = "https://example.com/hooks/123/" + "s" * 70
    with pytest.raises(ConfigError) as caught:
        parse_config(riskon_config(tmp_path, webhook={"hooks": {"announce": {"url": "${HOOK}"}}}), env={"HOOK": secret})
    assert "channels.discord_webhook.hooks.announce.url: must be a Discord webhook URL" in str(caught.value)
    assert secret not in str(caught.value) and "s" * 70 not in str(caught.value)
    with pytest.raises(ConfigError, match="channels.discord_webhook.hooks.announce.url: environment variable HOOK"):
        parse_config(riskon_config(tmp_path, webhook={"hooks": {"announce": {"url": "${HOOK}"}}}), env={})
    with pytest.raises(ConfigError, match="hooks: must not be empty"):
        parse_config(riskon_config(tmp_path, webhook={"hooks": {}}), env={})
    with pytest.raises(ConfigError, match="thread_id: 'general' is not a Discord id"):
        parse_config(riskon_config(tmp_path, webhook={"hooks": {"a": {"url": "${H}", "thread_id": "general"}}}),
                     env={"H": "https://discord.com/api/webhooks/" + "1" * 18 + "/" + "t" * 68})


def test_unknown_rules_or_symbols_of_a_webhook_are_refused_together(store, tmp_path):
    url = "https://discord.com/api/webhooks/" + "1" * 18 + "/" + "t" * 68
    config = parse_config(riskon_config(tmp_path, webhook={"hooks": {
        "a": {"url": "${H}", "rules": ["nope_ath"], "symbols": ["ETH"]}}}), env={"H": url})
    with pytest.raises(RiskonError) as caught:
        Runtime(config, store, feeds={}, clock=lambda: NOW)
    message = str(caught.value)
    assert "channels.discord_webhook.hooks.a.rules: unknown rule 'nope_ath'" in message
    assert "channels.discord_webhook.hooks.a.symbols: unknown symbol 'ETH'" in message


def test_bot_config_errors(tmp_path):
    def problems(**bot):
        with pytest.raises(ConfigError) as caught:
            parse_config(riskon_config(tmp_path, bot={"token": "${T}", **bot}), env={"T": "abc.def.ghi"})
        return str(caught.value)

    assert "channels.discord.guilds: 'my server' is not a Discord id" in problems(guilds=["my server"])
    assert "channels.discord.api_base: must be a http or https URL" in problems(api_base="discord.com")
    assert "channels.discord.gateway: must be a ws or wss URL" in problems(gateway="http://x")
    assert "channels.discord.max_ratelimit_wait_seconds: must be at least 30" in problems(max_ratelimit_wait_seconds=1)
    assert "channels.discord.tokn: unknown key (did you mean 'token'?)" in problems(tokn="x")
    with pytest.raises(ConfigError, match="channels.discord.token: is required"):
        parse_config(riskon_config(tmp_path, bot={}), env={})


async def test_a_refused_bot_token_is_reported_and_alerts_wait(store, tmp_path):
    fake = await FakeDiscord().start()
    fake.add_guild()
    bot = {"token": "${T}", "api_base": fake.api_base, "gateway": fake.gateway, "ready_timeout_seconds": 1}
    config = parse_config(riskon_config(tmp_path, bot=bot), env={"T": "wrong-token"})
    runtime = Runtime(config, store, feeds={}, clock=lambda: NOW)
    try:
        notifier = runtime.notifiers["discord"]
        with pytest.raises(RiskonError, match="Discord refused the bot token"):
            await notifier.start()
        runtime.store.subscribe("discord", fake.channel(next(iter(fake.guilds.values())), "alerts")["id"])
        record(runtime, event("BTC"))
        assert (await runtime.deliver()).outcomes == {("discord", "retry"): 1}
    finally:
        await runtime.close()
        await fake.stop()


async def test_no_log_line_holds_a_discord_secret(store, tmp_path):
    fake = await FakeDiscord().start()
    guild = fake.add_guild()
    channel = fake.channel(guild, "alerts")
    url = fake.add_webhook(channel["id"])
    token = "MTE4.secret-bot-token.xyz"
    fake.token = token
    stream = io.StringIO()
    setup_logging("DEBUG", secrets=[token, url])  # what `riskon run` does with the ${VAR} values of config
    logging.getLogger().handlers[0].setStream(stream)
    try:
        bot = {"token": "${T}", "api_base": fake.api_base, "gateway": fake.gateway, "guild_ready_timeout": 0.05}
        config = parse_config(riskon_config(tmp_path, bot=bot, webhook={"hooks": {"a": {"url": "${H}"}}}),
                              env={"T": token, "H": url})
        runtime = Runtime(config, store, feeds={}, clock=lambda: NOW)
        await runtime.start()
        runtime.store.subscribe("discord", channel["id"])
        record(runtime, event("BTC"))
        fake.rate_limit_next(url.split("/")[-2], 0.05)
        assert (await runtime.deliver()).outcomes == {("discord", "sent"): 1, ("discord_webhook", "sent"): 1}
        await fake.interact(guild, channel, "status")
        await runtime.close()
    finally:
        logging.getLogger().handlers.clear()
        await fake.stop()
    text = stream.getvalue()
    assert "webhooks/" in text and "POST" in text  # discord.py did log the requests, at DEBUG
    assert token not in text
    assert url.split("/")[-1] not in text  # the webhook's token, logged by discord.py with the API base's URL
    # (An interaction's own token shows in discord.py's DEBUG dump of gateway events: it answers that one
    # command, for 15 minutes, and is not riskon's to hide.)


def test_both_discord_channels_share_one_api_base(tmp_path):
    url = "https://discord.com/api/webhooks/" + "1" * 18 + "/" + "t" * 68
    env = {"T": "abc.def", "H": url}
    hooks = {"a": {"url": "${H}"}}

    def runtime(bot_base, hook_base):
        bot = {"token": "${T}", **({"api_base": bot_base} if bot_base else {})}
        webhook = {"hooks": hooks, **({"api_base": hook_base} if hook_base else {})}
        config = parse_config(riskon_config(tmp_path, bot=bot, webhook=webhook), env=env)
        return Runtime(config, Store.memory(), feeds={}, clock=lambda: NOW)

    inherited = runtime("http://127.0.0.1:1/api/v10", None).notifiers["discord_webhook"]
    assert inherited.settings.api_base == "http://127.0.0.1:1/api/v10"
    assert runtime("http://proxy:1/api/v10", "http://proxy:1/api/v10/").notifiers["discord_webhook"]
    for bot_base, hook_base in (("http://a:1/api/v10", "http://b:1/api/v10"), (None, "http://b:1/api/v10")):
        with pytest.raises(RiskonError, match="discord.py has one API base per process"):
            runtime(bot_base, hook_base)
