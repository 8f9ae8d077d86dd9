"""Claims: a row being sent is claimed first; an outcome the database refuses waits in memory, never resent.

The database is made unwritable for real: a second SQLite connection holds the write lock (BEGIN EXCLUSIVE)
while the Store waits only 50 ms for it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter

import pytest

from alerts.bars import utc
from alerts.events import AlertEvent
from bot.delivery import Dispatcher
from bot.notifiers.base import SENT
from storage import Store

NOW = utc(2025, 3, 3, 21)
CHATS = ("1", "2", "3")


class Locker:
    """Another connection to the same file that takes and gives back SQLite's write lock."""

    def __init__(self, path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)

    def take(self) -> None:
        self.conn.execute("BEGIN EXCLUSIVE")

    def give_back(self) -> None:
        self.conn.execute("COMMIT")


class Chats:
    """A notifier that counts what each chat got, and can take the lock when it sends to one chat."""

    name = "telegram"

    def __init__(self, lock_at: str | None = None, locker: Locker | None = None) -> None:
        self.copies: Counter = Counter()
        self.lock_at, self.locker = lock_at, locker

    async def start(self): ...

    async def stop(self): ...

    async def send(self, chat, alert):
        if chat.chat_id == self.lock_at and self.locker is not None:
            self.locker.take()  # the lock arrives mid fan-out, as another process's would
        self.copies[chat.chat_id] += 1
        return SENT


@pytest.fixture
def file_store(tmp_path):
    store = Store.open(tmp_path / "riskon.db", busy_timeout=0.05)
    yield store
    store.close()


def record_alert(store: Store) -> None:
    event = AlertEvent("rut_ath", "new_ath", "^RUT", utc(2025, 3, 3), {"price": 2400.0})
    subscriptions = [store.subscribe("telegram", chat) for chat in CHATS]
    store.record_alert(event, "^RUT at a new high", NOW, subscriptions)


def store_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "database" in r.getMessage()]


async def test_a_locked_database_sends_nothing_and_says_so_once(tmp_path, file_store, caplog):
    record_alert(file_store)
    locker = Locker(tmp_path / "riskon.db")
    chats = Chats()
    dispatcher = Dispatcher(file_store, {"telegram": chats}, lambda: NOW)
    locker.take()
    for _ in range(4):
        await dispatcher.drain()
    assert chats.copies == {}, "nothing may be sent before its claim is committed"
    assert len(store_warnings(caplog)) == 1, store_warnings(caplog)
    locker.give_back()
    await dispatcher.drain()
    assert chats.copies == dict.fromkeys(CHATS, 1)
    assert file_store.outbox_counts()["sent"] == 3


async def test_outcomes_the_database_refuses_wait_in_memory_and_are_never_resent(tmp_path, file_store, caplog):
    caplog.set_level(logging.INFO, logger="bot.delivery")
    record_alert(file_store)
    locker = Locker(tmp_path / "riskon.db")
    chats = Chats(lock_at="2", locker=locker)
    dispatcher = Dispatcher(file_store, {"telegram": chats}, lambda: NOW, concurrency=1)
    await dispatcher.drain()  # chat 1's outcome is written; the lock arrives with chat 2's send
    for _ in range(5):
        await dispatcher.drain()
    assert chats.copies == {"1": 1, "2": 1}, "a sent alert whose outcome is unwritten is not sent again"
    assert file_store.outbox_counts()["sent"] == 1
    assert file_store.claimed_count() == 1, "chat 2's row stays claimed; chat 3's could not be claimed, nor sent"
    assert len(store_warnings(caplog)) == 2, store_warnings(caplog)  # outcomes unwritten; claims refused
    locker.give_back()
    await dispatcher.drain()
    assert file_store.outbox_counts() == {"pending": 0, "sent": 3, "retrying": 0, "failed": 0}
    assert file_store.claimed_count() == 0
    assert chats.copies == dict.fromkeys(CHATS, 1)
    assert any("recorded 1 send outcome(s)" in r.getMessage() for r in caplog.records)


async def test_rows_a_dead_run_left_claimed_are_sent_again_once(file_store, caplog):
    record_alert(file_store)
    due = file_store.due_deliveries(NOW)
    assert len(file_store.claim_deliveries([d.id for d in due], NOW)) == 3  # a run claimed these, then died
    chats = Chats()
    dispatcher = Dispatcher(file_store, {"telegram": chats}, lambda: NOW)
    await dispatcher.drain()
    await dispatcher.drain()
    assert chats.copies == dict.fromkeys(CHATS, 1)
    assert any("3 deliveries were being sent when riskon last stopped" in r.getMessage() for r in caplog.records)
    rows = file_store.db.execute("select attempts, status from deliveries").fetchall()
    assert rows == [(1, "sent")] * 3


async def test_a_row_is_claimed_once_and_a_claimed_row_is_not_due(store):
    record_alert(store)
    ids = [d.id for d in store.due_deliveries(NOW)]
    assert store.claim_deliveries(ids, NOW) == ids
    assert store.claim_deliveries(ids, NOW) == []
    assert store.due_deliveries(NOW) == []
    store.release_claims(ids[:1])
    assert [d.id for d in store.due_deliveries(NOW)] == ids[:1]
