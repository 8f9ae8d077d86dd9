"""Grouped delivery: the alerts of one cycle for one chat go out as one message, and share its outcome."""

from __future__ import annotations

from datetime import timedelta

from alerts.bars import utc
from alerts.events import AlertEvent
from bot.delivery import Dispatcher
from bot.notifiers.base import SENT, retry

NOW = utc(2025, 9, 18, 21)


class Recorder:
    """A notifier that remembers each message (its events and text) and answers from a script."""

    name = "telegram"

    def __init__(self, script=None):
        self.script = list(script or [])
        self.sent = []

    async def start(self): ...

    async def stop(self): ...

    async def send(self, chat, alert):
        outcome = self.script.pop(0) if self.script else SENT
        if outcome.status == "sent":
            self.sent.append((chat.chat_id, [e.symbol for e in alert.events], alert.text))
        return outcome


def record(store, symbol, fired_at, chats=("1",)):
    event = AlertEvent("smallcap_ath", "new_ath", symbol, utc(2025, 9, 18), {"price": 1.0})
    subs = [store.subscribe("telegram", chat) for chat in chats]
    store.record_alert(event, f"{symbol} at a new high", fired_at, subs)


async def test_one_cycle_one_message_per_chat(store):
    """^RUT and IWM fire in one cycle: each chat gets one message with both; the next cycle is another message."""
    record(store, "^RUT", NOW, chats=("1", "2"))
    record(store, "IWM", NOW, chats=("1", "2"))
    record(store, "IWN", NOW + timedelta(minutes=5), chats=("1",))
    notifier = Recorder()
    dispatcher = Dispatcher(store, {"telegram": notifier}, lambda: NOW + timedelta(minutes=6), group_cycles=True)
    await dispatcher.drain()
    assert sorted(notifier.sent) == [
        ("1", ["IWN"], "IWN at a new high"),
        ("1", ["^RUT", "IWM"], "2 alerts\n\n^RUT at a new high\n\nIWM at a new high"),
        ("2", ["^RUT", "IWM"], "2 alerts\n\n^RUT at a new high\n\nIWM at a new high"),
    ]
    assert store.outbox_counts()["sent"] == 5


async def test_a_retry_holds_the_whole_message(store):
    """A message refused with retry-after leaves all its alerts pending; they go out together later."""
    record(store, "^RUT", NOW)
    record(store, "IWM", NOW)
    notifier = Recorder([retry("429 too many requests", after=30)])
    clock = {"now": NOW}
    dispatcher = Dispatcher(store, {"telegram": notifier}, lambda: clock["now"], group_cycles=True)
    await dispatcher.drain()
    assert notifier.sent == [] and store.outbox_counts()["retrying"] == 2
    clock["now"] = NOW + timedelta(minutes=5)
    await dispatcher.drain()
    assert [symbols for _, symbols, _ in notifier.sent] == [["^RUT", "IWM"]]


async def test_without_grouping_each_alert_is_its_own_message(store):
    """group_cycles off (the default): one message per alert, as before."""
    record(store, "^RUT", NOW)
    record(store, "IWM", NOW)
    notifier = Recorder()
    await Dispatcher(store, {"telegram": notifier}, lambda: NOW + timedelta(minutes=1)).drain()
    assert [symbols for _, symbols, _ in notifier.sent] == [["^RUT"], ["IWM"]]
