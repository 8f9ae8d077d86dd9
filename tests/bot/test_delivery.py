"""The delivery job: retries with backoff and retry-after, permanent failures, one channel never blocks another."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from alerts.bars import utc
from alerts.events import AlertEvent
from bot.delivery import Dispatcher, retry_delay
from bot.notifiers.base import SENT, SendOutcome, failed, retry

NOW = utc(2024, 11, 25, 21)


class ScriptedNotifier:
    """A notifier that answers each send from a script of outcomes and remembers what it was sent."""

    def __init__(self, name: str, script: dict[str, list[SendOutcome]] | None = None, raises: bool = False):
        self.name = name
        self.script = script or {}
        self.raises = raises
        self.sent: list[tuple[str, str]] = []

    async def start(self): ...

    async def stop(self): ...

    async def send(self, chat, alert):
        if self.raises:
            raise RuntimeError("adapter bug")
        outcomes = self.script.get(chat.chat_id)
        outcome = outcomes.pop(0) if outcomes else SENT
        if outcome.status == "sent":
            self.sent.append((chat.chat_id, alert.text))
        return outcome


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def event(day: int) -> AlertEvent:
    return AlertEvent("rut_ath", "new_ath", "^RUT", utc(2024, 11, day), {"price": 2400.0 + day})


def record(store, ev, channel="telegram", chats=("1",)):
    subs = [store.subscribe(channel, chat) for chat in chats]
    return store.record_alert(ev, f"alert {ev.bar_time:%d}", NOW, subs)


async def test_retry_after_is_honoured_then_the_alert_is_sent(store):
    clock = Clock(NOW)
    notifier = ScriptedNotifier("telegram", {"1": [retry("429 Too Many Requests", after=30)]})
    dispatcher = Dispatcher(store, {"telegram": notifier}, clock, retry_base_seconds=1)
    record(store, event(1))
    report = await dispatcher.drain()
    assert report.outcomes[("telegram", "retry")] == 1
    clock.now = NOW + timedelta(seconds=29)
    assert (await dispatcher.drain()).outcomes == {}
    clock.now = NOW + timedelta(seconds=31)
    await dispatcher.drain()
    assert notifier.sent == [("1", "alert 01")]
    assert store.outbox_counts()["sent"] == 1


async def test_chat_gone_fails_for_good_and_deactivates_the_subscription(store):
    notifier = ScriptedNotifier("telegram", {"2": [failed("Forbidden: bot was blocked by the user", chat_gone=True)]})
    dispatcher = Dispatcher(store, {"telegram": notifier}, Clock(NOW))
    record(store, event(1), chats=("1", "2"))
    await dispatcher.drain()
    assert notifier.sent == [("1", "alert 01")]
    assert [s.chat_id for s in store.active_subscriptions()] == ["1"]
    assert store.outbox_counts()["failed"] == 1


async def test_retries_stop_after_max_attempts_without_dropping_the_subscription(store):
    clock = Clock(NOW)
    notifier = ScriptedNotifier("telegram", {"1": [retry("502 Bad Gateway")] * 5})
    dispatcher = Dispatcher(store, {"telegram": notifier}, clock, retry_base_seconds=1, max_attempts=3)
    record(store, event(1))
    for minute in range(6):
        clock.now = NOW + timedelta(minutes=minute * 10)
        await dispatcher.drain()
    assert store.outbox_counts()["failed"] == 1
    assert store.active_subscriptions()  # a service outage is not the chat's fault


async def test_a_raising_adapter_never_blocks_another_channel(store):
    broken = ScriptedNotifier("discord", raises=True)
    working = ScriptedNotifier("telegram")
    dispatcher = Dispatcher(store, {"discord": broken, "telegram": working}, Clock(NOW))
    subs = [store.subscribe("discord", "chan"), store.subscribe("telegram", "1")]
    store.record_alert(event(1), "alert 01", NOW, subs)
    report = await dispatcher.drain()
    assert working.sent == [("1", "alert 01")]
    assert report.outcomes[("discord", "retry")] == 1


async def test_a_chat_gets_its_alerts_in_order_and_a_retry_holds_the_later_ones(store):
    clock = Clock(NOW)
    notifier = ScriptedNotifier("telegram", {"1": [retry("timeout")]})
    dispatcher = Dispatcher(store, {"telegram": notifier}, clock, retry_base_seconds=1)
    record(store, event(1))
    record(store, event(2))
    await dispatcher.drain()
    assert notifier.sent == []
    clock.now = NOW + timedelta(minutes=5)
    await dispatcher.drain()
    assert [text for _, text in notifier.sent] == ["alert 01", "alert 02"]


async def test_deliveries_for_an_unconfigured_channel_wait_untouched(store):
    dispatcher = Dispatcher(store, {}, Clock(NOW))
    record(store, event(1), channel="discord")
    await dispatcher.drain()
    assert store.outbox_counts()["pending"] == 1


def test_backoff_grows_is_capped_and_never_undercuts_retry_after():
    import random

    rng = random.Random(1)
    delays = [retry_delay(n, base=5, cap=60, retry_after=None, rng=rng) for n in range(1, 10)]
    assert all(2.5 <= d <= 60 for d in delays) and delays[-1] > delays[0]
    assert retry_delay(1, base=5, cap=60, retry_after=120, rng=rng) == 120


async def test_deliveries_for_a_channel_not_configured_are_named_once_each_and_wait(store, caplog):
    telegram = ScriptedNotifier("telegram")
    dispatcher = Dispatcher(store, {"telegram": telegram}, Clock(NOW))

    def missing() -> list[str]:
        return [r.getMessage() for r in caplog.records if "that channel is not configured" in r.getMessage()]

    chats = [store.subscribe("discord", "1"), store.subscribe("telegram", "1")]
    store.record_alert(event(1), "alert 01", NOW, chats)
    for _ in range(3):
        await dispatcher.drain()
    assert missing() == ["deliveries for channel 'discord' wait: that channel is not configured"]
    record(store, event(2), channel="telegram")
    await dispatcher.drain()
    assert len(missing()) == 1  # said once, however many drains
    record(store, event(3), channel="slack")  # a channel that starts waiting later is named when it does
    record(store, event(4), channel="discord")
    await dispatcher.drain()
    await dispatcher.drain()
    assert missing()[1:] == ["deliveries for channel 'slack' wait: that channel is not configured"]
    assert telegram.sent == [("1", "alert 01"), ("1", "alert 02")]
    assert store.outbox_counts() == {"pending": 3, "sent": 2, "retrying": 0, "failed": 0}


async def test_a_send_unanswered_in_time_is_given_up_and_retried_later(store):
    class Hanging(ScriptedNotifier):
        async def send(self, chat, alert):
            if chat.chat_id == "1":
                try:
                    await asyncio.sleep(3600)  # a service that never answers
                except asyncio.CancelledError:
                    self.cancelled = True
                    raise
            return await super().send(chat, alert)

    telegram = Hanging("telegram")
    dispatcher = Dispatcher(store, {"telegram": telegram}, Clock(NOW), retry_base_seconds=1,
                            send_timeout_seconds=0.05)
    record(store, event(1), chats=("1", "2"))
    report = await asyncio.wait_for(dispatcher.drain(), 10)
    assert report.outcomes == {("telegram", "retry"): 1, ("telegram", "sent"): 1}
    assert telegram.cancelled and telegram.sent == [("2", "alert 01")]
    rows = store.db.execute("select chat_id, status, attempts, last_error, claimed_at from deliveries "
                            "order by chat_id").fetchall()
    assert rows == [("1", "retrying", 1, "telegram: send timed out", None), ("2", "sent", 1, None, None)]
