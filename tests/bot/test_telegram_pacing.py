"""Telegram pacing: never more than the limit in any window, from the first message, and no 429 from a strict fake."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from alerts.events import AlertEvent
from alerts.messages import format_alert
from bot.config import parse_config
from bot.notifiers.telegram.pacing import TelegramPacer
from bot.runtime import Runtime
from tests.fakes.telegram_api import TOKEN, FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class VirtualTime:
    """A clock that moves only when the pacer sleeps: the schedule it makes, without waiting for it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def most_within(times: list[float], seconds: float) -> int:
    times, most, first = sorted(times), 0, 0
    for last, moment in enumerate(times):
        while times[first] <= moment - seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


async def slots(pacer: TelegramPacer, time: VirtualTime, chats: list[str]) -> list[float]:
    """Return when each message (one per entry, in order) is let through, relative to the start."""
    start, out = time.now, []

    async def send() -> bool:
        out.append(time.now - start)
        return True

    for chat in chats:
        await pacer.process_request(send, (), {}, "sendMessage", {"chat_id": chat, "text": "hi"}, None)
    return out


async def test_the_bot_never_sends_more_than_30_in_any_second_from_the_first_one():
    time = VirtualTime()
    pacer = TelegramPacer(30, 1.0, 20, clock=time.clock, sleep=time.sleep)
    sent = await slots(pacer, time, [str(10_000 + i) for i in range(300)])
    assert most_within(sent, 1.0 - 1e-9) == 30
    assert sum(t < 1.0 for t in sent) == 30  # no start-up burst on top of the rate
    assert 300 / sent[-1] >= 0.97 * 30  # and the whole rate is used


async def test_one_chat_gets_one_message_a_second_and_a_group_20_a_minute():
    time = VirtualTime()
    pacer = TelegramPacer(30, 1.0, 20, clock=time.clock, sleep=time.sleep)
    private = await slots(pacer, time, ["42"] * 5)
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(private, private[1:]))
    group = await slots(pacer, time, ["-1001"] * 45)
    assert most_within(group, 60.0 - 1e-9) == 20
    assert group[20] - group[0] >= 60.0 - 1e-9 and group[40] - group[0] >= 120.0 - 1e-9


async def test_messages_without_a_chat_are_not_paced():
    time = VirtualTime()
    pacer = TelegramPacer(1, 1.0, 20, clock=time.clock, sleep=time.sleep)
    calls = []

    async def call(name):
        calls.append((name, time.now))
        return True

    for _ in range(5):
        await pacer.process_request(call, ("getUpdates",), {}, "getUpdates", {"timeout": 1}, None)
    assert [at for _, at in calls] == [1000.0] * 5


async def test_a_fan_out_gets_no_429_from_a_fake_that_counts_exactly_telegrams_windows(store, tmp_path):
    # Telegram's rules at ten times the rate (300 in any second, one per chat per second) to keep the test short.
    fake = await FakeTelegram(overall_per_second=300, max_poll_seconds=0.3).start()
    chats = range(30_000, 30_700)
    groups = range(-3_000_010, -3_000_000)
    for chat_id in chats:
        fake.add_private_chat(chat_id)
    for chat_id in groups:
        fake.add_group(chat_id)
    config = parse_config(f"""
feeds: {{replay: {{kind: replay, path: "{tmp_path}"}}}}
symbols: [{{id: "^RUT", feed: replay}}, {{id: BTC, feed: replay}}]
rules: [{{id: rut_ath, kind: new_ath, symbols: ["^RUT"]}}, {{id: btc_ath, kind: new_ath, symbols: [BTC]}}]
schedule: {{group_alerts: false}}
channels:
  telegram: {{token: "${{TELEGRAM_BOT_TOKEN}}", base_url: "{fake.base_url}", poll_timeout_seconds: 1,
              messages_per_second: 300, register_commands: false}}
""", env={"TELEGRAM_BOT_TOKEN": TOKEN})
    runtime = Runtime(config, store)
    store = runtime.store
    try:
        for chat_id in [*chats, *groups]:
            store.subscribe("telegram", str(chat_id))
        now = datetime.now(timezone.utc)
        for symbol, rule in (("^RUT", "rut_ath"), ("BTC", "btc_ath")):  # two alerts: each chat gets two messages
            event = AlertEvent(rule, "new_ath", symbol, now - timedelta(days=1),
                               {"price": 2500.0, "previous_ath": 2442.74, "previous_ath_time": "2021-11-08",
                                "pct_above_previous": 2.3, "days_since_previous_ath": 1400})
            store.record_alert(event, format_alert(event), now, store.recipients(event, now))
        await runtime.start()
        for _ in range(4):
            await runtime.deliver()
            if not store.outbox_counts()["pending"]:
                break
        await runtime.close()
    finally:
        await fake.stop()
    assert fake.too_many_requests == 0, f"429s for these limits: {dict(fake.limited_by)}"
    assert len(fake.sent) == 2 * (len(chats) + len(groups))
    assert fake.most_in_any_window(1.0) <= 300
    assert max(fake.most_in_any_window(1.0, chat_id) for chat_id in [chats[0], chats[-1], groups[0]]) == 1
