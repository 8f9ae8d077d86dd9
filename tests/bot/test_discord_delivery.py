"""Alert delivery to Discord channels and webhooks through the outbox, over real HTTP: once each, as embeds."""

from __future__ import annotations

import asyncio
import socket
from datetime import datetime, timedelta, timezone

import pytest

from alerts.events import AlertEvent
from alerts.messages import format_alert
from bot.config import parse_config
from bot.notifiers.base import ChatTarget, OutgoingAlert
from bot.runtime import Runtime
from storage import Store
from tests.fakes.discord_api import FakeDiscord, riskon_config

NOW = datetime(2026, 3, 2, 21, 0, tzinfo=timezone.utc)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def ath(symbol: str = "^RUT", day: int = 2, price: float = 2450.5) -> AlertEvent:
    rule = "rut_ath" if symbol == "^RUT" else "btc_ath"
    return AlertEvent(rule, "new_ath", symbol, datetime(2026, 3, day, tzinfo=timezone.utc),
                      {"price": price, "by": "close", "previous_ath": 2440.0, "previous_ath_time": "2025-11-10",
                       "days_since_previous_ath": 112, "pct_above_previous": 0.43, "fresh_episode": True,
                       "all_time": True, "since": None})


def record(runtime: Runtime, event: AlertEvent) -> int:
    """Record an alert for every subscription that wants it, as the engine does."""
    store, now = runtime.store, runtime.now()
    alert_id = store.record_alert(event, format_alert(event), now, store.recipients(event, now))
    assert alert_id is not None
    return alert_id


def errors(runtime: Runtime) -> list[str]:
    """Return the last error of every delivery that has one, to explain a failing assertion."""
    return [row[0] for row in runtime.store.db.execute("select last_error from deliveries where last_error is not null")]


class Clock:
    """A clock tests move forward."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def fake():
    server = await FakeDiscord(channel_window=0.2).start()
    yield server
    await server.stop()


@pytest.fixture
def guild(fake):
    guild = fake.add_guild()
    for name in ("small-caps", "crypto", "gone-403", "gone-404"):
        fake.add_channel(guild, name)
    return guild


def config_for(fake, tmp_path, hooks=None):
    bot = {"token": "${DISCORD_BOT_TOKEN}", "api_base": fake.api_base, "gateway": fake.gateway,
           "guild_ready_timeout": 0.05, "ready_timeout_seconds": 5}
    webhook = {"hooks": hooks, "send_timeout_seconds": 5} if hooks else None
    env = {"DISCORD_BOT_TOKEN": fake.token, **{f"HOOK_{n.upper()}": url for n, url in (hooks_urls(fake) or {}).items()}}
    return parse_config(riskon_config(tmp_path, bot=bot, webhook=webhook), env=env)


def hooks_urls(fake):
    return getattr(fake, "hook_urls", None)


async def open_runtime(fake, tmp_path, db, clock, hooks=None) -> Runtime:
    runtime = Runtime(config_for(fake, tmp_path, hooks), Store.open(db), feeds={}, clock=clock)
    await runtime.start()
    return runtime


@pytest.fixture
async def setup(fake, guild, tmp_path):
    """A runtime with the bot and one webhook; three channels subscribed."""
    fake.hook_urls = {"announce": fake.add_webhook(fake.channel(guild, "alerts")["id"])}
    clock = Clock()
    runtime = await open_runtime(fake, tmp_path, tmp_path / "riskon.db", clock,
                                 hooks={"announce": {"url": "${HOOK_ANNOUNCE}"}})
    store = runtime.store
    ids = {name: fake.channel(guild, name)["id"] for name in ("small-caps", "crypto", "gone-403", "gone-404")}
    store.subscribe("discord", ids["small-caps"], symbols=["^RUT"])
    store.subscribe("discord", ids["crypto"])
    yield runtime, ids, clock
    await runtime.close()
    runtime.store.close()


async def test_a_new_alert_reaches_every_subscribed_channel_and_webhook_once_as_an_embed(fake, guild, setup):
    runtime, ids, clock = setup
    record(runtime, ath("^RUT"))
    report = await runtime.deliver()
    assert report.outcomes == {("discord", "sent"): 2, ("discord_webhook", "sent"): 1}, errors(runtime)
    for chat in (ids["small-caps"], ids["crypto"]):
        [message] = fake.sent_to(chat)
        [embed] = message.embeds
        assert embed["title"] == "📈 ^RUT new all-time high: close 2,450.50"
        assert embed["color"] == 0x2ECC71 and embed["timestamp"].startswith("2026-03-02T00:00:00")
        assert {"name": "Price", "value": "2,450.50", "inline": True} in embed["fields"]
        assert {"name": "% above previous", "value": "+0.4%", "inline": True} in embed["fields"]
        assert "rule rut_ath" in embed["footer"]["text"]
        assert message.content == "" and message.payload["allowed_mentions"]["parse"] == []
    [hooked] = [m for m in fake.messages if m.webhook_id]
    assert hooked.embeds[0]["title"].startswith("📈 ^RUT new all-time high")
    # A second drain, and a BTC alert that only the unfiltered chats want.
    assert (await runtime.deliver()).outcomes == {}
    record(runtime, ath("BTC", price=101000.0))
    assert (await runtime.deliver()).outcomes == {("discord", "sent"): 1, ("discord_webhook", "sent"): 1}
    assert len(fake.sent_to(ids["small-caps"])) == 1 and len(fake.sent_to(ids["crypto"])) == 2


async def test_chart_is_attached_to_the_embed(fake, guild, setup):
    runtime, ids, clock = setup
    alert = OutgoingAlert((ath(),), format_alert(ath()), PNG)
    for channel, chat in (("discord", ChatTarget(ids["crypto"])), ("discord_webhook", ChatTarget("announce"))):
        outcome = await runtime.notifiers[channel].send(chat, alert)
        assert outcome.status == "sent", outcome
    for message in fake.messages:
        assert message.files == {"chart.png": PNG}
        assert message.embeds[0]["image"]["url"] == "attachment://chart.png"


async def test_a_chart_too_large_for_discord_is_dropped_not_the_alert(fake, guild, setup):
    runtime, ids, clock = setup
    fake.attachment_limit = len(PNG) - 1
    alert = OutgoingAlert((ath(),), format_alert(ath()), PNG)
    for channel, chat in (("discord", ChatTarget(ids["crypto"])), ("discord_webhook", ChatTarget("announce"))):
        assert (await runtime.notifiers[channel].send(chat, alert)).status == "sent"
    assert len(fake.messages) == 2
    assert all(m.files == {} and "image" not in m.embeds[0] for m in fake.messages)


async def test_a_short_rate_limit_is_waited_out_and_sent_once(fake, guild, setup):
    runtime, ids, clock = setup
    fake.rate_limit_next(ids["crypto"], 0.2)
    fake.rate_limit_next(fake.hook_urls["announce"].split("/")[-2], 0.2)
    record(runtime, ath("BTC"))
    assert (await runtime.deliver()).outcomes == {("discord", "sent"): 1, ("discord_webhook", "sent"): 1}
    assert len(fake.sent_to(ids["crypto"])) == 1 and len([m for m in fake.messages if m.webhook_id]) == 1
    posts = [p for m, p in fake.requests if m == "POST" and ids["crypto"] in p]
    assert len(posts) == 2  # the 429, then the message


async def test_a_long_rate_limit_comes_back_as_retry_after(fake, guild, setup):
    runtime, ids, clock = setup
    fake.rate_limit_next(ids["crypto"], 120.0)
    record(runtime, ath("BTC"))
    assert (await runtime.deliver()).outcomes == {("discord", "retry"): 1, ("discord_webhook", "sent"): 1}
    assert fake.sent_to(ids["crypto"]) == []
    [row] = runtime.store.db.execute("select status, next_attempt_at, last_error from deliveries "
                                     "where channel = 'discord'").fetchall()
    assert row[0] == "retrying" and "rate limited for 120 s" in row[2]
    assert datetime.fromisoformat(row[1]) >= NOW + timedelta(seconds=120)
    clock.now = NOW + timedelta(seconds=121)
    assert (await runtime.deliver()).outcomes == {("discord", "sent"): 1}
    assert len(fake.sent_to(ids["crypto"])) == 1


@pytest.mark.parametrize("status, words", [(403, "Missing Access"), (404, "Unknown Channel"), (400, "archived")])
async def test_a_channel_that_refuses_or_is_gone_stops_its_subscription(fake, guild, setup, status, words):
    runtime, ids, clock = setup
    gone = ids["gone-403"] if status == 403 else ids["gone-404"]
    runtime.store.subscribe("discord", gone)
    fake.make_gone(gone, status)
    record(runtime, ath("BTC"))
    report = await runtime.deliver()
    assert report.outcomes == {("discord", "sent"): 1, ("discord", "failed"): 1, ("discord_webhook", "sent"): 1}
    assert not runtime.store.subscription("discord", gone).active
    [error] = runtime.store.db.execute("select last_error from deliveries where chat_id = ?", [gone]).fetchone()
    assert words in error
    record(runtime, ath("BTC", day=3, price=102000.0))
    assert (await runtime.deliver()).outcomes == {("discord", "sent"): 1, ("discord_webhook", "sent"): 1}


async def test_after_a_restart_nothing_is_sent_twice(fake, guild, tmp_path):
    fake.hook_urls = {"announce": fake.add_webhook(fake.channel(guild, "alerts")["id"])}
    hooks = {"announce": {"url": "${HOOK_ANNOUNCE}"}}
    db, clock = tmp_path / "riskon.db", Clock()
    small, crypto, slow = (fake.channel(guild, n)["id"] for n in ("small-caps", "crypto", "gone-403"))
    runtime = await open_runtime(fake, tmp_path, db, clock, hooks)
    for chat in (small, crypto, slow):
        runtime.store.subscribe("discord", chat)
    record(runtime, ath("^RUT"))
    fake.rate_limit_next(crypto, 120.0)  # this one waits for a later drain
    # The slow channel's message is accepted, but the answer comes too late: riskon "crashes" before it.
    fake.hold_answers(slow, 30.0)
    drain = asyncio.create_task(runtime.deliver())
    await fake.wait_for_messages(3)  # small-caps, the webhook, and the slow channel's accepted message
    await asyncio.sleep(0.2)
    drain.cancel()
    with pytest.raises(asyncio.CancelledError):
        await drain
    await runtime.close()
    runtime.store.close()
    assert runtime.store is not None and len(fake.messages) == 3
    del fake.slow[slow]

    clock.now = NOW + timedelta(minutes=5)
    restarted = await open_runtime(fake, tmp_path, db, clock, hooks)
    try:
        report = await restarted.deliver()
        # crypto now goes out; the slow channel's resend carries the same nonce, so Discord creates nothing new.
        assert report.outcomes == {("discord", "sent"): 2}
        assert (await restarted.deliver()).outcomes == {}
        assert [len(fake.sent_to(c)) for c in (small, crypto, slow)] == [1, 1, 1]
        assert len([m for m in fake.messages if m.webhook_id]) == 1
        assert restarted.store.outbox_counts()["sent"] == 4
    finally:
        await restarted.close()
        restarted.store.close()


async def test_many_events_in_one_message_respect_discord_limits(fake, guild, setup):
    runtime, ids, clock = setup
    events = tuple(ath("BTC", day=1 + i % 27, price=100000.0 + i) for i in range(12))
    huge = OutgoingAlert(events, "x" * 10_000)
    outcome = await runtime.notifiers["discord"].send(ChatTarget(ids["crypto"]), huge)
    assert outcome.status == "sent", outcome  # the fake answers 400 Invalid Form Body over any limit
    [message] = fake.sent_to(ids["crypto"])
    assert len(message.embeds) == 10 and "and 2 more alerts" in message.embeds[-1]["footer"]["text"]


async def test_a_thread_subscription_posts_into_the_thread(fake, guild, setup):
    runtime, ids, clock = setup
    thread = fake.add_channel(guild, "rut-thread", parent_id=ids["small-caps"])
    runtime.store.subscribe("discord", ids["small-caps"], thread["id"], symbols=["^RUT"])
    record(runtime, ath("^RUT"))
    await runtime.deliver()
    assert len(fake.sent_to(thread["id"])) == 1 and len(fake.sent_to(ids["small-caps"])) == 1


async def test_fan_out_is_paced_under_discords_global_limit(store, tmp_path):
    fake = await FakeDiscord(global_per_second=10).start()
    guild = fake.add_guild()
    channels = [fake.add_channel(guild, f"alerts-{i}")["id"] for i in range(12)]
    bot = {"token": "${DISCORD_BOT_TOKEN}", "api_base": fake.api_base, "gateway": fake.gateway,
           "guild_ready_timeout": 0.05, "sync_commands": False, "messages_per_second": 8}
    config = parse_config(riskon_config(tmp_path, bot=bot), env={"DISCORD_BOT_TOKEN": fake.token})
    runtime = Runtime(config, store, feeds={}, clock=lambda: NOW)
    await runtime.start()
    try:
        for channel in channels:
            runtime.store.subscribe("discord", channel)
        record(runtime, ath("BTC"))
        started = asyncio.get_running_loop().time()
        assert (await runtime.deliver()).outcomes == {("discord", "sent"): 12}
        assert asyncio.get_running_loop().time() - started >= 11 / 8 * 0.9  # paced, not in one burst
        assert fake.global_429s == 0 and [len(fake.sent_to(c)) for c in channels] == [1] * 12
    finally:
        await runtime.close()
        await fake.stop()


async def test_discord_unreachable_at_start_is_retried_in_the_background(store, tmp_path):
    fake = FakeDiscord()
    guild = fake.add_guild()
    with socket.socket() as probe:  # a free port, left closed: riskon starts while Discord cannot be reached
        probe.bind(("127.0.0.1", 0))
        fake.port = probe.getsockname()[1]
    bot = {"token": "${DISCORD_BOT_TOKEN}", "api_base": fake.api_base, "gateway": fake.gateway,
           "guild_ready_timeout": 0.05, "login_retry_seconds": 0.1}
    clock = Clock()
    config = parse_config(riskon_config(tmp_path, bot=bot), env={"DISCORD_BOT_TOKEN": fake.token})
    runtime = Runtime(config, store, feeds={}, clock=clock)
    await runtime.start()  # returns at once: the login is retried in the background
    notifier = runtime.notifiers["discord"]
    try:
        channel = fake.channel(guild, "alerts")["id"]
        runtime.store.subscribe("discord", channel)
        record(runtime, ath("BTC"))
        assert (await runtime.deliver()).outcomes == {("discord", "retry"): 1}
        await fake.start(port=fake.port)
        await asyncio.wait_for(notifier.ready.wait(), 5)
        clock.now = NOW + timedelta(minutes=1)
        assert (await runtime.deliver()).outcomes == {("discord", "sent"): 1}
        assert len(fake.sent_to(channel)) == 1 and {c["name"] for c in fake.synced_commands["global"]}
    finally:
        await runtime.close()
        await fake.stop()


async def test_a_channel_where_the_bot_may_not_attach_files_gets_the_alert_without_its_chart(fake, guild, setup):
    # Was 403 Missing Permissions taken as a channel gone: the subscription stopped, and a channel whose admins
    # only barred attachments lost every alert for good.
    runtime, ids, clock = setup
    fake.deny(ids["crypto"], "attach")
    outcome = await runtime.notifiers["discord"].send(ChatTarget(ids["crypto"]), OutgoingAlert((ath("BTC"),), "hi", PNG))
    assert outcome.status == "sent", outcome
    [message] = fake.sent_to(ids["crypto"])
    assert message.files == {} and message.embeds


async def test_a_channel_where_the_bot_may_not_post_keeps_its_subscription_until_the_permission_is_back(
        fake, guild, setup):
    runtime, ids, clock = setup
    fake.deny(ids["crypto"], "send")
    record(runtime, ath("BTC"))
    assert (await runtime.deliver()).outcomes[("discord", "failed")] == 1
    [error] = runtime.store.db.execute("select last_error from deliveries where chat_id = ?", [ids["crypto"]]).fetchone()
    assert "Missing Permissions" in error and "once a server admin allows it" in error
    assert runtime.store.subscription("discord", ids["crypto"]).active, "a permission a server admin gives back"
    fake.deny(ids["crypto"], "")
    record(runtime, ath("BTC", day=3, price=102000.0))
    assert (await runtime.deliver()).outcomes[("discord", "sent")] >= 1
    assert len(fake.sent_to(ids["crypto"])) == 1
