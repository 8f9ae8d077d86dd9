"""Fan-out of one alert to 1,000 Telegram chats through the real outbox and delivery job, with faults injected.

(It was 2,000 chats; what it proves does not depend on the count, and 1,000 keeps every kind of fault present.)"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from alerts.events import AlertEvent
from alerts.messages import format_alert
from bot.config import parse_config
from bot.runtime import Runtime
from storage import Store
from tests.fakes.telegram_api import TOKEN, FakeTelegram, riskon_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

VALUES = {"price": 2500.0, "previous_ath": 2442.74, "previous_ath_time": "2021-11-08", "pct_above_previous": 2.3,
          "days_since_previous_ath": 1400}
PRIVATE = range(10_000, 10_900)
GROUPS = range(-2_000_100, -2_000_000)
BLOCKED = set(list(PRIVATE)[::97]) | {GROUPS[5]}  # blocked the bot / kicked it
VANISHED = set(list(PRIVATE)[5::151])  # "chat not found"
FAULTS = {"500": list(PRIVATE)[1::61], "502": list(PRIVATE)[2::89], "timeout": list(PRIVATE)[3::199],
          "429": list(PRIVATE)[4::53] + list(GROUPS)[::10]}


async def test_one_alert_reaches_every_reachable_chat_exactly_once(store, tmp_path):
    # The time-out is far above an answer's time on a loaded machine: a send Telegram took but the bot gave up on
    # is retried, as it must be, and a 1 s limit once made such a duplicate (the fake answers in one event loop
    # with the bot). Only the injected hangs (4.5 s) time out.
    fake = await FakeTelegram(overall_per_second=200, hang_seconds=4.5, max_poll_seconds=1).start()
    clock = [datetime(2026, 9, 28, 14, 0, tzinfo=timezone.utc)]
    try:
        for chat_id in PRIVATE:
            fake.add_private_chat(chat_id).blocked = chat_id in BLOCKED
        for chat_id in GROUPS:
            fake.add_group(chat_id).blocked = chat_id in BLOCKED
        for chat_id in VANISHED:
            fake.chats[chat_id].gone = True
        for fault, chats in FAULTS.items():
            for chat_id in chats:
                fake.inject(fault, chat_id)
        config = parse_config(riskon_config(
            fake, tmp_path, schedule={"retry_base_seconds": 5, "max_attempts": 5},
            telegram={"request_timeout_seconds": 4, "messages_per_second": 190}), env={"TELEGRAM_BOT_TOKEN": TOKEN})
        runtime = Runtime(config, store, clock=lambda: clock[0])
        for chat_id in [*PRIVATE, *GROUPS]:
            store.subscribe("telegram", str(chat_id))
        event = AlertEvent("rut_ath", "new_ath", "^RUT", clock[0] - timedelta(days=1), VALUES)
        store.record_alert(event, format_alert(event), clock[0], store.recipients(event, clock[0]))
        await runtime.start()
        for _ in range(8):  # the first drain sends to all; later ones retry the faulted chats
            await runtime.deliver()
            counts = store.outbox_counts()
            if counts["pending"] == counts["retrying"] == 0:
                break
            clock[0] += timedelta(minutes=2)  # retries become due
        await runtime.close()
    finally:
        await fake.stop()

    unreachable = BLOCKED | VANISHED
    reachable = [c for c in [*PRIVATE, *GROUPS] if c not in unreachable]
    received: dict[int, int] = {}
    for message in fake.sent:
        received[message.chat_id] = received.get(message.chat_id, 0) + 1
    assert [c for c in reachable if received.get(c) != 1] == []
    assert not unreachable & set(received)
    assert store.outbox_counts() == {"pending": 0, "sent": len(reachable), "retrying": 0, "failed": len(unreachable)}
    active = {int(s.chat_id) for s in store.active_subscriptions("telegram")}
    assert active == set(reachable)
    assert fake.too_many_requests == 0, "riskon paced itself below Telegram's limits"
    # The rate achieved is a benchmark figure (bench/bench_telegram.py), not a timed assertion here.


async def test_stopping_mid_fan_out_then_restarting_sends_each_chat_one_copy(tmp_path):
    fake = await FakeTelegram(overall_per_second=100, max_poll_seconds=0.3).start()
    chats = range(20_000, 20_300)
    for chat_id in chats:
        fake.add_private_chat(chat_id)
    config = parse_config(riskon_config(fake, tmp_path, telegram={"messages_per_second": 95}),
                          env={"TELEGRAM_BOT_TOKEN": TOKEN})
    store = Store.open(tmp_path / "riskon.db")
    try:
        now = datetime.now(timezone.utc)
        for chat_id in chats:
            store.subscribe("telegram", str(chat_id))
        event = AlertEvent("rut_ath", "new_ath", "^RUT", now, VALUES)
        store.record_alert(event, format_alert(event), now, store.recipients(event, now))
        first = Runtime(config, store)
        await first.start()
        drain = asyncio.ensure_future(first.deliver())
        await fake.wait_until(lambda: len(fake.sent) >= 60)
        await first.close()  # shutdown arrives mid-fan-out: in-flight sends finish and are recorded
        await drain
        stopped_at = len(fake.sent)
        assert 60 <= stopped_at < len(chats)
        assert store.outbox_counts()["sent"] == stopped_at
        second = Runtime(config, store, clock=lambda: datetime.now(timezone.utc) + timedelta(hours=1))
        await second.start()
        await second.deliver()
        await second.close()
    finally:
        await fake.stop()
    counts = Counter(message.chat_id for message in fake.sent)
    assert sorted(counts) == list(chats) and set(counts.values()) == {1}
    assert store.outbox_counts()["sent"] == len(chats)
    store.close()
