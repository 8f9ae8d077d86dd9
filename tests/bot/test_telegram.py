"""The Telegram notifier and commands against the fake Bot API, over real HTTP with python-telegram-bot."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest

from alerts.bars import Bar
from alerts.errors import RiskonError
from alerts.events import AlertEvent
from alerts.messages import format_alert
from bot.config import ConfigError, load_config, parse_config
from bot.logs import setup_logging
from bot.notifiers.base import ChatTarget, OutgoingAlert
from bot.notifiers.telegram import TEXT_LIMIT, split_text, to_html
from bot.runtime import Runtime
from tests.fakes.telegram_api import BOT_USERNAME, TOKEN, FakeTelegram, check_html

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PTB 22: retry_after int -> timedelta

ADMIN = 900  # riskon admin (config `admins`)
GROUP_ADMIN, MEMBER, ALICE = 301, 302, 111
GROUP, FORUM, TOPIC = -1001, -1002, 7


def config_text(fake: FakeTelegram, tmp_path, extra: str = "", chat_interval: float = 0.2) -> str:
    return f"""
feeds: {{replay: {{kind: replay, path: "{tmp_path}"}}}}
symbols:
  - {{id: "^RUT", feed: replay, asset_class: index}}
  - {{id: BTC, feed: replay, asset_class: crypto}}
rules:
  - {{id: rut_ath, kind: new_ath, symbols: ["^RUT"]}}
  - {{id: btc_ath, kind: new_ath, symbols: [BTC]}}
admins: ["telegram:{ADMIN}"]
channels:
  telegram:
    token: ${{TELEGRAM_BOT_TOKEN}}
    base_url: {fake.base_url}
    base_file_url: {fake.base_file_url}
    poll_timeout_seconds: 1
    request_timeout_seconds: 1
    chat_interval_seconds: {chat_interval}
{extra}"""


@pytest.fixture
async def fake():
    # Tests pace one chat at 5 messages/s, and the fake holds them to it, to keep the suite quick.
    server = await FakeTelegram(chat_per_second=5, hang_seconds=2.0, max_poll_seconds=0.3).start()
    server.add_private_chat(ALICE)
    server.add_private_chat(ADMIN)
    server.add_private_chat(MEMBER)
    server.add_group(GROUP, admins={GROUP_ADMIN})
    server.add_group(FORUM, admins={GROUP_ADMIN}, forum=True, topics={TOPIC})
    yield server
    await server.stop()


@pytest.fixture
# Not the shared `runtime` fixture (tests/conftest.py): started against the fake Telegram server.
async def runtime(store, fake, tmp_path):
    config = parse_config(config_text(fake, tmp_path), env={"TELEGRAM_BOT_TOKEN": TOKEN})
    running = Runtime(config, store)
    await running.start()
    yield running
    await running.close()


async def ask(fake: FakeTelegram, chat: int, user: int, text: str, thread: int | None = None) -> str:
    """Post a command as a user and return the bot's answer."""
    before = len(fake.messages_to(chat))
    fake.post_command(chat, user, text, thread)
    await fake.wait_until(lambda: len(fake.messages_to(chat)) > before, timeout=10)
    answer = fake.messages_to(chat)[before]
    assert answer.thread_id == thread
    return answer.text


def event(symbol: str = "^RUT", day: int = 1, rule: str = "rut_ath") -> AlertEvent:
    values = {"price": 2500.0, "by": "close", "previous_ath": 2442.74, "previous_ath_time": "2021-11-08",
              "days_since_previous_ath": 1400, "pct_above_previous": 2.3, "fresh_episode": True, "all_time": True}
    return AlertEvent(rule, "new_ath", symbol, datetime(2026, 9, day, tzinfo=timezone.utc), values)


async def test_starts_inside_our_loop_in_the_order_telegram_expects(fake, runtime):
    await fake.wait_until(lambda: fake.call_counts["getUpdates"] >= 1)
    methods = [method for method, _ in fake.calls]
    assert methods.index("getMe") < methods.index("deleteWebhook") < methods.index("getUpdates")
    assert {c["command"] for c in fake.commands} >= {"start", "help", "status", "subscribe", "pause"}


async def test_private_chat_subscribes_and_gets_each_alert_once(fake, runtime):
    assert "Subscribed this chat: every alert" in await ask(fake, ALICE, ALICE, "/subscribe")
    store = runtime.store
    now = datetime.now(timezone.utc)
    store.record_alert(event(), format_alert(event()), now, store.recipients(event(), now))
    await runtime.deliver()
    await runtime.deliver()
    alerts = [m for m in fake.messages_to(ALICE) if "all-time high" in m.text]
    assert len(alerts) == 1
    assert alerts[0].parse_mode == "HTML" and alerts[0].text.startswith("<b>")


async def test_group_member_may_read_status_but_not_change_subscriptions(fake, runtime):
    assert "Only this group's admins" in await ask(fake, GROUP, MEMBER, "/subscribe")
    assert runtime.store.subscription("telegram", str(GROUP)) is None
    assert "^RUT" in await ask(fake, GROUP, MEMBER, f"/status@{BOT_USERNAME}")
    assert "Subscribed this group" in await ask(fake, GROUP, GROUP_ADMIN, "/subscribe BTC")
    assert runtime.store.subscription("telegram", str(GROUP)).symbols == ("BTC",)


async def test_forum_topic_owns_its_subscription(fake, runtime):
    assert "Subscribed this topic" in await ask(fake, FORUM, GROUP_ADMIN, "/subscribe", thread=TOPIC)
    assert runtime.store.subscription("telegram", str(FORUM), str(TOPIC)).active
    assert runtime.store.subscription("telegram", str(FORUM)) is None
    now = datetime.now(timezone.utc)
    runtime.store.record_alert(event(), format_alert(event()), now, runtime.store.recipients(event(), now))
    await runtime.deliver()
    assert [m.thread_id for m in fake.messages_to(FORUM) if "all-time high" in m.text] == [TOPIC]


async def test_admin_commands_refuse_others(fake, runtime):
    assert "admins only" in await ask(fake, ALICE, ALICE, "/pause")
    assert not runtime.paused
    assert "Paused" in await ask(fake, ADMIN, ADMIN, "/pause")
    assert runtime.paused
    assert "Resumed" in await ask(fake, ADMIN, ADMIN, "/resume")
    assert "Outbox" in await ask(fake, ADMIN, ADMIN, "/health")


async def test_bad_arguments_get_the_usage_line(fake, runtime):
    answer = await ask(fake, ALICE, ALICE, "/mute forever")
    assert "Usage: /mute DURATION [RULE|SYMBOL]" in answer
    assert "Send /help" in await ask(fake, ALICE, ALICE, "/frobnicate")


async def test_plain_text_in_a_private_chat_gets_a_pointer_to_help_and_a_group_stays_quiet(fake, runtime):
    assert await ask(fake, ALICE, ALICE, "hello bot, what's BTC doing?") == "I answer commands only: send /help for the list."
    fake.post_command(GROUP, MEMBER, "anyone around?")
    assert "Send /help" in await ask(fake, ALICE, ALICE, "/frobnicate")  # answered after the group's message
    assert fake.messages_to(GROUP) == []


async def test_rough_edges_of_the_first_hour(fake, runtime):
    # A negative count is a whole number: say what range is allowed.
    assert (await ask(fake, ALICE, ALICE, "/alerts -3")).startswith("N must be between 1 and 50.")
    await ask(fake, ALICE, ALICE, "/subscribe")
    assert (await ask(fake, ALICE, ALICE, "/mute 6h rut_ath")).startswith("Muted rut_ath in this chat until ")
    assert await ask(fake, ALICE, ALICE, "/unmute") == "Lifted 1 mute in this chat."
    help_text = await ask(fake, ALICE, ALICE, "/help")
    assert help_text.startswith("/start — Say hello") and "/mute DURATION [RULE|SYMBOL] — " in help_text


def test_html_escaping_and_splitting_keep_telegram_happy():
    text = "\n".join(f"line {i} <S&P> {'x' * 90}" for i in range(200))
    pieces = split_text(text)
    assert len(pieces) > 1
    assert "\n".join(pieces) == text  # nothing lost, cut on line boundaries
    for index, piece in enumerate(pieces):
        problem, visible = check_html(to_html(piece, bold_first_line=index == 0))
        assert problem is None and visible <= TEXT_LIMIT
    one_long_line = "é&" * 5000
    assert "".join(split_text(one_long_line)) == one_long_line


async def test_short_alert_with_chart_is_one_photo_with_caption(fake, runtime):
    outcome = await runtime.notifiers["telegram"].send(
        ChatTarget(str(FORUM), str(TOPIC)), OutgoingAlert((event(),), format_alert(event()), b"\x89PNG chart"))
    assert outcome.status == "sent"
    [photo] = fake.messages_to(FORUM)
    assert photo.photo == b"\x89PNG chart" and photo.thread_id == TOPIC and "all-time high" in photo.text


async def test_a_group_that_became_a_supergroup_keeps_its_alerts(fake, runtime):
    old, new = -5001, -1005001
    fake.add_group(old).migrated_to = new
    fake.add_group(new)
    runtime.store.subscribe("telegram", str(old), symbols=["BTC"])
    outcome = await runtime.notifiers["telegram"].send(ChatTarget(str(old)), OutgoingAlert((event(),), "hi"))
    assert outcome.status == "sent" and [m.text for m in fake.messages_to(new)] == ["<b>hi</b>"]
    assert not runtime.store.subscription("telegram", str(old)).active
    assert runtime.store.subscription("telegram", str(new)).symbols == ("BTC",)


async def test_a_group_where_members_may_not_send_photos_gets_the_alert_as_text(fake, runtime):
    # Was "not enough rights to send photos" taken as the chat gone: the alert failed and the group's subscription
    # stopped for good, although only the chart was barred.
    group = -5002
    fake.add_group(group).no_photos = True
    runtime.store.subscribe("telegram", str(group))
    outcome = await runtime.notifiers["telegram"].send(
        ChatTarget(str(group)), OutgoingAlert((event(),), format_alert(event()), b"\x89PNG chart"))
    assert outcome.status == "sent", outcome
    [message] = fake.messages_to(group)
    assert message.photo is None and "all-time high" in message.text
    assert runtime.store.subscription("telegram", str(group)).active


async def test_a_group_where_the_bot_may_not_post_keeps_its_subscription_for_when_an_admin_allows_it(
        fake, runtime):
    # Was taken as the chat gone: the subscription stopped for good, so the group got nothing even after its admin
    # gave the bot its right back (Discord's 403 Missing Permissions is treated the same way).
    group = -5003
    fake.add_group(group).no_messages = True
    runtime.store.subscribe("telegram", str(group))
    telegram = runtime.notifiers["telegram"]
    outcome = await telegram.send(ChatTarget(str(group)),
                                  OutgoingAlert((event(),), format_alert(event()), b"\x89PNG chart"))
    assert outcome.status == "failed" and not outcome.chat_gone
    # Not tried again as text alone: the group refuses that too.
    assert [method for method, params in fake.calls if params.get("chat_id") == str(group)] == ["sendPhoto"]
    assert "once a group admin allows it, the next alerts arrive" in outcome.error
    assert runtime.store.subscription("telegram", str(group)).active
    fake.chats[group].no_messages = False  # the admin allows it
    outcome = await telegram.send(ChatTarget(str(group)), OutgoingAlert((event(),), format_alert(event())))
    assert outcome.status == "sent" and len(fake.messages_to(group)) == 1


async def test_a_migrated_group_whose_supergroup_subscribed_too_gets_each_alert_once_by_its_own_filters(
        fake, runtime):
    # Was the alert twice in the supergroup (its own delivery, and the old group's sent on there), and the
    # supergroup's own filters replaced by the old group's.
    old, new = -5101, -1005101
    fake.add_group(old).migrated_to = new
    fake.add_group(new)
    store = runtime.store
    store.subscribe("telegram", str(old), symbols=["^RUT"])
    store.subscribe("telegram", str(new), rules=["rut_ath"])  # its members' /subscribe in the supergroup
    now = datetime.now(timezone.utc)
    store.record_alert(event(), "hello", now, store.recipients(event(), now))
    await runtime.deliver()
    assert [m.text for m in fake.messages_to(new)] == ["<b>hello</b>"]
    assert store.subscription("telegram", str(new)).rules == ("rut_ath",) and store.subscription(
        "telegram", str(new)).symbols == ()
    assert not store.subscription("telegram", str(old)).active


async def test_long_alert_is_split_and_chart_sent_as_photo(fake, runtime):
    notifier = runtime.notifiers["telegram"]
    text = "🚀 <BTC> & friends\n" + "\n".join(f"row {i}: {'y' * 100}" for i in range(100))
    outcome = await notifier.send(ChatTarget(str(ALICE)), OutgoingAlert((event(),), text, b"\x89PNG fake chart"))
    assert outcome.status == "sent"
    sent = fake.messages_to(ALICE)
    assert len(sent) == 4 and sent[-1].photo == b"\x89PNG fake chart"
    assert fake.too_many_requests == 0  # paced at one message a second per chat, not told to by a 429
    assert sent[0].text.startswith("<b>🚀 &lt;BTC&gt; &amp; friends</b>")


@pytest.mark.parametrize(
    "setup, status, chat_gone",
    [
        (lambda f: setattr(f.chats[ALICE], "blocked", True), "failed", True),
        (lambda f: setattr(f.chats[ALICE], "gone", True), "failed", True),
        (lambda f: f.inject("500", ALICE), "retry", False),
        (lambda f: f.inject("502", ALICE), "retry", False),
        (lambda f: f.inject("timeout", ALICE), "retry", False),
        (lambda f: f.inject("429", ALICE), "retry", False),
    ],
    ids=["blocked", "chat-not-found", "500", "502-html", "timeout", "429"],
)
async def test_service_errors_become_outcomes(fake, runtime, setup, status, chat_gone):
    setup(fake)
    outcome = await runtime.notifiers["telegram"].send(ChatTarget(str(ALICE)), OutgoingAlert((event(),), "hi"))
    assert (outcome.status, outcome.chat_gone) == (status, chat_gone)
    assert TOKEN not in outcome.error
    if outcome.error.startswith("telegram: flood"):
        assert outcome.retry_after == 1


async def test_no_log_line_holds_the_token(store, fake, tmp_path):
    stream = io.StringIO()
    setup_logging("DEBUG", secrets=[TOKEN])
    logging.getLogger().handlers[0].setStream(stream)
    for noisy in ("httpx", "httpcore", "telegram"):
        logging.getLogger(noisy).setLevel(logging.DEBUG)  # the worst case: everything a user could turn on
    try:
        config = parse_config(config_text(fake, tmp_path), env={"TELEGRAM_BOT_TOKEN": TOKEN})
        running = Runtime(config, store)
        await running.start()
        fake.inject("500", ALICE)
        fake.chats[MEMBER].blocked = True
        notifier = running.notifiers["telegram"]
        for chat in (ALICE, MEMBER, ALICE):
            await notifier.send(ChatTarget(str(chat)), OutgoingAlert((event(),), "hi"))
        await ask(fake, ALICE, ALICE, "/status")
        await running.close()
    finally:
        logging.getLogger().handlers.clear()
    lines = stream.getvalue().splitlines()
    assert any("HTTP Request" in line and "/bot***/" in line for line in lines), "httpx lines were captured"
    assert not [line for line in lines if TOKEN in line or TOKEN.split(":")[1] in line]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_webhook_mode_receives_commands_pushed_by_telegram(store, fake, tmp_path):
    port = free_port()
    extra = (f"    mode: webhook\n    webhook_url: http://127.0.0.1:{port}/riskon/telegram\n"
             f"    webhook_port: {port}\n    webhook_secret: ${{WEBHOOK_SECRET}}\n")
    config = parse_config(config_text(fake, tmp_path, extra), env={"TELEGRAM_BOT_TOKEN": TOKEN,
                                                                   "WEBHOOK_SECRET": "s3cret-value"})
    running = Runtime(config, store)
    await running.start()
    try:
        assert fake.webhook == {"url": f"http://127.0.0.1:{port}/riskon/telegram", "secret_token": "s3cret-value"}
        assert "Subscribed this chat" in await ask(fake, ALICE, ALICE, "/subscribe")
        assert fake.call_counts["getUpdates"] == 0
        # A caller without the secret is turned away.
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{port}/riskon/telegram", json={"update_id": 99}) as response:
                assert response.status == 403
    finally:
        await running.close()


async def test_a_rejected_token_is_reported_without_the_token(store, fake, tmp_path):
    wrong = "654321:WRONG-secret_token"
    config = parse_config(config_text(fake, tmp_path), env={"TELEGRAM_BOT_TOKEN": wrong})
    running = Runtime(config, store)
    with pytest.raises(RiskonError) as failure:
        await running.notifiers["telegram"].start()
    assert "Telegram did not start" in str(failure.value)
    assert wrong not in str(failure.value) and "WRONG-secret_token" not in str(failure.value)
    outcome = await running.notifiers["telegram"].send(ChatTarget(str(ALICE)), OutgoingAlert((event(),), "hi"))
    assert outcome.status == "retry" and "not connected" in outcome.error  # kept in the outbox for later
    await running.close()


async def test_no_record_holds_the_token_even_without_riskon_logging_setup(store, fake, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # any handler a user or library adds sees these records
    # As in a process where riskon's logging setup never ran: an earlier test's in-process `riskon` command may
    # have quieted httpx to WARNING (bot/logs.py), and the records under test are httpx's INFO lines.
    caplog.set_level(logging.DEBUG, logger="httpx")
    config = parse_config(config_text(fake, tmp_path), env={"TELEGRAM_BOT_TOKEN": TOKEN})
    running = Runtime(config, store)
    await running.start()
    fake.inject("timeout", ALICE)
    await running.notifiers["telegram"].send(ChatTarget(str(ALICE)), OutgoingAlert((event(),), "hi"))
    await ask(fake, ALICE, ALICE, "/help")
    await running.close()
    texts = [record.getMessage() + (record.exc_text or "") for record in caplog.records]
    assert any("HTTP Request" in text for text in texts)
    assert not [text for text in texts if TOKEN in text]


@pytest.mark.parametrize(
    "token, extra, problem",
    [
        ("not-a-token-value", "", "channels.telegram.token: must be a bot token like 123456:ABC-def"),
        (TOKEN, "    mode: webhook\n", "webhook mode needs webhook_url"),
        (TOKEN, "    messages_per_second: 0\n", "channels.telegram.messages_per_second: must be greater than 0"),
        (TOKEN, "    tokn: x\n", "channels.telegram.tokn: unknown key (did you mean 'token'?)"),
    ],
)
def test_config_problems_are_named_without_showing_the_token(fake, tmp_path, token, extra, problem):
    with pytest.raises(ConfigError) as failure:
        parse_config(config_text(fake, tmp_path, extra), env={"TELEGRAM_BOT_TOKEN": token})
    assert problem in str(failure.value)
    assert token not in str(failure.value)


EVERY_COMMAND = ["/start", "/help", "/status", "/status BTC", "/subscribe BTC", "/list", "/alerts 2", "/rules",
                 "/mute 1h", "/unmute", "/chart BTC", "/unsubscribe BTC", "/pause", "/resume", "/reload", "/health"]


@pytest.mark.parametrize(
    "chat, user, thread, refused_subscription, refused_admin",
    [
        (GROUP, MEMBER, None, 4, 4),
        (GROUP, GROUP_ADMIN, None, 0, 4),
        (FORUM, GROUP_ADMIN, TOPIC, 0, 4),
        (ALICE, ALICE, None, 0, 4),
        (ADMIN, ADMIN, None, 0, 0),
    ],
    ids=["group member", "group admin", "forum topic admin", "private", "riskon admin"],
)
async def test_every_command_over_telegram(store, tmp_path, chat, user, thread, refused_subscription, refused_admin):
    fake = await FakeTelegram(chat_per_second=50, chat_burst=50, max_poll_seconds=1).start()
    fake.add_private_chat(ALICE), fake.add_private_chat(ADMIN)
    fake.add_group(GROUP, admins={GROUP_ADMIN})
    fake.add_group(FORUM, admins={GROUP_ADMIN}, forum=True, topics={TOPIC})
    path = tmp_path / "config.yaml"
    path.write_text(config_text(fake, tmp_path, chat_interval=0.02))
    running = Runtime(load_config(path, env={"TELEGRAM_BOT_TOKEN": TOKEN}), store)
    await running.start()
    try:
        for text in EVERY_COMMAND:
            fake.post_command(chat, user, text, thread)
        await fake.wait_until(lambda: len(fake.messages_to(chat)) >= len(EVERY_COMMAND), timeout=20)
    finally:
        await running.close()
        await fake.stop()
    answers = [m.text for m in fake.messages_to(chat)]
    assert all(m.thread_id == thread for m in fake.messages_to(chat))
    assert sum("Only this group's admins" in a for a in answers) == refused_subscription
    assert sum("for riskon's admins only" in a for a in answers) == refused_admin
    assert not [a for a in answers if "failed on riskon" in a or "Usage:" in a]
    assert fake.too_many_requests == 0


async def test_chart_command_answers_with_a_photo(fake, runtime):
    start = datetime(2026, 6, 1, tzinfo=timezone.utc)
    runtime.store.upsert_bars("BTC", [Bar(start + timedelta(days=i), 100 + i, 101 + i, 99 + i, 100.5 + i)
                                      for i in range(60)])
    fake.post_command(ALICE, ALICE, "/chart BTC")
    await fake.wait_until(lambda: any(m.photo for m in fake.messages_to(ALICE)), timeout=20)
    [photo] = [m for m in fake.messages_to(ALICE) if m.photo]
    assert photo.photo.startswith(b"\x89PNG") and photo.text.startswith("BTC: last close 159.50")


async def test_a_chart_is_uploaded_once_then_sent_by_file_id(fake, runtime):
    chats = [ALICE, ADMIN, MEMBER]
    chart = b"\x89PNG one chart for every chat"
    notifier = runtime.notifiers["telegram"]
    outcomes = await asyncio.gather(*(notifier.send(ChatTarget(str(chat)), OutgoingAlert((event(),), "hi", chart))
                                      for chat in chats))  # all at once, as a fan-out does
    assert [o.status for o in outcomes] == ["sent"] * 3
    assert [m.photo for chat in chats for m in fake.messages_to(chat)] == [chart] * 3
    assert fake.uploads == 1
    fake.files.clear()  # Telegram no longer knows the file_id: the bytes go again
    assert (await runtime.notifiers["telegram"].send(ChatTarget(str(ALICE)), OutgoingAlert((event(),), "hi", chart))
            ).status == "sent"
    assert fake.messages_to(ALICE)[-1].photo == chart and fake.uploads == 2
