"""Telegram pacing: never more than the limit in any window, from the first message, and no 429 from a strict fake."""

from __future__ import annotations

import asyncio
import heapq
from datetime import datetime, timedelta, timezone

import pytest
from telegram.error import RetryAfter

from alerts.bars import Bar
from alerts.events import AlertEvent
from alerts.messages import format_alert
from bot.config import parse_config
from bot.notifiers.telegram.pacing import TelegramPacer
from bot.runtime import Runtime
from tests.fakes.telegram_api import TOKEN, FakeTelegram, riskon_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class VirtualTime:
    """A clock that moves only when every task waits on it: the schedule the pacer makes, without waiting for it.

    Each sleeper waits its turn; once nothing else can run, the one due first moves the clock to its moment.
    """

    def __init__(self) -> None:
        self.now = 1000.0
        self._due: list[tuple[float, int]] = []
        self._count = 0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self._count += 1
        entry = (self.now + max(0.0, seconds), self._count)
        heapq.heappush(self._due, entry)
        try:
            for _ in range(100_000):  # bounded: a test that stops moving fails instead of hanging
                for _ in range(5):  # let every task that can run, run
                    await asyncio.sleep(0)
                if self._due[0] == entry:
                    heapq.heappop(self._due)
                    self.now = max(self.now, entry[0])
                    return
            raise AssertionError("virtual time stopped moving")
        finally:
            if entry in self._due:  # cancelled while waiting
                self._due.remove(entry)
                heapq.heapify(self._due)


def most_within(times: list[float], seconds: float) -> int:
    times, most, first = sorted(times), 0, 0
    for last, moment in enumerate(times):
        while times[first] <= moment - seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


async def slots(pacer: TelegramPacer, time: VirtualTime, chats: list[str],
                round_trips: dict[int, float] | None = None) -> list[float]:
    """Return when each message (one per entry, handed to the pacer in order) is let through, from the start.

    The messages are sent at once, as a fan-out does; `round_trips` gives some of them (by index) an answer that
    takes that long, the others are answered at once.
    """
    start, out = time.now, [0.0] * len(chats)

    async def send(index: int) -> bool:
        out[index] = time.now - start
        await time.sleep((round_trips or {}).get(index, 0.0))
        return True

    tasks = []
    for index, chat in enumerate(chats):
        tasks.append(asyncio.create_task(
            pacer.process_request(send, (index,), {}, "sendMessage", {"chat_id": chat, "text": "hi"}, None)))
        await asyncio.sleep(0)  # each takes its place in the queue in order
    await asyncio.gather(*tasks)
    return out


async def test_the_bot_never_sends_more_than_30_in_any_second_from_the_first_one():
    time = VirtualTime()
    pacer = TelegramPacer(30, 1.0, 20, clock=time.clock, sleep=time.sleep)
    sent = await slots(pacer, time, [str(10_000 + i) for i in range(300)])
    assert most_within(sent, 1.0 - 1e-9) == 30
    assert sum(t < 1.0 for t in sent) == 30  # no start-up burst on top of the rate
    assert 300 / sent[-1] >= 0.97 * 30  # and the whole rate is used


async def test_a_message_answered_late_counts_from_its_answer_the_others_from_when_they_left():
    time = VirtualTime()
    pacer = TelegramPacer(30, 1.0, 20, margin=0.015, clock=time.clock, sleep=time.sleep)
    # Message 40 may have been held up on its way in: all Telegram says is that it had it 0.2 s after it left.
    sent = await slots(pacer, time, [str(10_000 + i) for i in range(100)], round_trips={40: 0.2})
    assert sent[70] >= sent[40] + 0.2 + 1.0 - 1e-9
    # Answered at once, a message counts from when it left: the one 30 after it goes a second later, no more.
    assert sent[39] - sent[9] == pytest.approx(1.0)
    assert pacer.held_up == 31  # message 40, and the first 30: too few round trips to compare them with


async def test_what_every_round_trip_pays_comes_off_each_answer_and_a_slower_one_is_charged_its_delay():
    time = VirtualTime()
    pacer = TelegramPacer(30, 1.0, 20, margin=0.015, clock=time.clock, sleep=time.sleep)
    # A far server: every answer takes 100 ms, but message 50's takes 300 ms (held up on its way in, perhaps).
    trips = dict.fromkeys(range(120), 0.1) | {50: 0.3}
    sent = await slots(pacer, time, [str(10_000 + i) for i in range(120)], round_trips=trips)
    # The first 30 have too few round trips to compare with (the first might be a chart's upload): from their answers.
    assert [sent[i + 30] - sent[i] for i in (0, 29)] == pytest.approx([1.1, 1.1])
    # The others count from when they left plus the margin, not from their answers a round trip later ...
    assert sent[119] - sent[89] == pytest.approx(1.015)
    assert min(b - a for a, b in zip(sent[1:], sent[31:])) >= 1.015 - 1e-9
    # ... and the slow one from when it left, plus the margin, plus the 200 ms it was slower.
    assert sent[80] - sent[50] == pytest.approx(1.215)
    assert pacer.held_up == 31
    await time.sleep(60.0)  # a quiet minute: the round trips before it say nothing of the path now
    again = await slots(pacer, time, [str(20_000 + i) for i in range(40)], round_trips=dict.fromkeys(range(40), 0.1))
    assert again[30] - again[0] == pytest.approx(1.1)
    assert pacer.held_up == 41


async def test_a_429_holds_its_chat_for_retry_after_and_not_the_bot():
    time = VirtualTime()
    pacer = TelegramPacer(30, 1.0, 20, clock=time.clock, sleep=time.sleep)
    calls: list[tuple[str, float]] = []

    async def send(chat: str) -> bool:
        calls.append((chat, time.now))
        if chat == "42" and len([c for c, _ in calls if c == "42"]) == 1:
            raise RetryAfter(5)
        return True

    with pytest.raises(RetryAfter):
        await pacer.process_request(send, ("42",), {}, "sendMessage", {"chat_id": "42"}, None)
    for chat in ("43", "42"):
        await pacer.process_request(send, (chat,), {}, "sendMessage", {"chat_id": chat}, None)
    first, other, again = (at for _, at in calls)
    assert other - first < 0.1  # another chat goes on its even pace
    assert again - first >= 5.0 - 1e-9  # the flooded chat waits what Telegram said
    assert pacer.too_many_requests == 1


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
    chats = range(30_000, 30_300)
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


async def test_a_fan_out_at_telegrams_own_limits_gets_no_429_and_never_31_messages_in_a_second(store, tmp_path):
    # Telegram's own numbers (30 in any second, one a second per chat), the chart uploaded once and then sent by
    # its file_id as live alerts are: 75 chats fill two and a half seconds, the start-up second included.
    fake = await FakeTelegram(max_poll_seconds=0.3).start()
    chats = range(40_000, 40_075)
    for chat_id in chats:
        fake.add_private_chat(chat_id)
    config = parse_config(riskon_config(fake, tmp_path), env={"TELEGRAM_BOT_TOKEN": TOKEN})
    runtime = Runtime(config, store)
    try:
        for chat_id in chats:
            store.subscribe("telegram", str(chat_id))
        now = datetime.now(timezone.utc)
        day0 = now - timedelta(days=120)
        store.upsert_bars("^RUT", [Bar(day0 + timedelta(days=i), 2000 + i, 2005 + i, 1995 + i, 2001 + i)
                                   for i in range(119)])
        event = AlertEvent("rut_ath", "new_ath", "^RUT", now - timedelta(days=1),
                           {"price": 2500.0, "previous_ath": 2442.74, "previous_ath_time": "2021-11-08",
                            "pct_above_previous": 2.3, "days_since_previous_ath": 1400})
        store.record_alert(event, format_alert(event), now, store.recipients(event, now))
        await runtime.start()
        await runtime.deliver()
        await runtime.close()
    finally:
        await fake.stop()
    assert fake.too_many_requests == 0, f"429s at Telegram's own limits: {dict(fake.limited_by)}"
    assert sorted(m.chat_id for m in fake.sent) == list(chats)
    assert fake.uploads == 1 and all(m.photo for m in fake.sent)
    assert fake.most_in_any_window(1.0) <= 30
    first = fake.sent[0].at
    assert sum(m.at < first + 1.0 for m in fake.sent) <= 30  # no start-up burst on top of the rate
