"""A replay commits a batch of days at once, then delivers each alerting day's alerts on their own.

Between that commit and the last of those sends, the outbox holds later days' alerts that are recorded but not
sent. These tests put a fault exactly there, through the real SQLite file: another connection takes the write
lock as an alert is being printed (as another process would), and a replay process is SIGKILLed while it waits
to print. Each alert must still reach the console once: never lost, never sent twice.
"""

from __future__ import annotations

import fcntl
import io
import os
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from alerts.bars import utc
from alerts.events import AlertEvent
from bot.config import load_config
from bot.delivery import Dispatcher
from bot.notifiers.base import SENT
from storage import Store
from tests.conftest import REPO

START, END = date(2020, 10, 1), date(2021, 3, 31)  # one batch of days; the rally fires many alerts in it
# Highs of small caps and crypto, each close above the last: alerts on many days, some days two at once.
CONFIG = """
storage: {{path: unused.db}}
feeds:
  history: {{kind: replay, path: {data}}}
symbols:
  - {{id: "^RUT", feed: history, csv: RUT, asset_class: index}}
  - {{id: BTC, feed: history, csv: BTC-USD, asset_class: crypto}}
  - {{id: ETH, feed: history, csv: ETH-USD, asset_class: crypto}}
rules:
  - {{id: ath, kind: new_ath, symbols: ["^RUT", BTC, ETH], by: close, rearm_pct: 0, min_gap_days: 30}}
"""


class LockingConsole(io.StringIO):
    """The console's stream: at its `lock_at`-th message another connection takes the database's write lock."""

    def __init__(self, path: Path, lock_at: int) -> None:
        super().__init__()
        self.locker = sqlite3.connect(path, isolation_level=None)
        self.lock_at, self.messages, self.waiting_at_lock = lock_at, 0, -1

    def write(self, text: str) -> int:
        self.messages += 1
        if self.messages == self.lock_at:
            self.waiting_at_lock = self.locker.execute(
                "select count(*) from deliveries where status = 'pending' and claimed_at is null").fetchone()[0]
            self.locker.execute("BEGIN EXCLUSIVE")
        return super().write(text)

    def give_back(self) -> None:
        self.locker.execute("COMMIT")


def write_config(folder: Path, market_data: Path) -> Path:
    path = folder / "config.yaml"
    path.write_text(CONFIG.format(data=market_data))
    return path


async def replay(store: Store, config_path: Path, market_data: Path, stream: io.StringIO):
    """Replay START..END into `store` as `riskon replay` does; return the runtime."""
    from bot.feeds.replay import ReplayFeed, ReplaySettings
    from bot.replay_loop import ReplayLoop
    from bot.runtime import Runtime
    from bot.serving import other_feeds, replay_config

    config = replay_config(load_config(config_path), str(market_data), START, END)
    feed = ReplayFeed("replay", ReplaySettings(**config.feeds["replay"].settings), config.symbols)
    feed.load()
    runtime = Runtime(config, store, clock=feed.clock, live_since=feed.live_since(), console_stream=stream,
                      feeds={"replay": feed, **other_feeds(config, store)})
    loop = ReplayLoop(runtime)
    await loop.run()
    assert loop.finished_replay
    return runtime


def alert_texts(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [text for (text,) in conn.execute("select text from alerts where silent = 0 order by id")]


async def test_a_lock_taken_while_a_committed_batch_is_delivered_loses_and_repeats_nothing(tmp_path, market_data):
    db = tmp_path / "replay.db"
    store = Store.open(db, durable=False, busy_timeout=0.01)  # each refused write waits this long
    console = LockingConsole(db, lock_at=3)
    try:
        runtime = await replay(store, write_config(tmp_path, market_data), market_data, console)
        assert console.waiting_at_lock > 0, "the lock came while later days' alerts waited, recorded and unsent"
        assert console.messages == 3, "nothing is sent while its claim cannot be committed"
        console.give_back()
        for _ in range(5):  # what the next drains of a live bot would do
            await runtime.deliver()
        assert store.outbox_counts() == {"pending": 0, "sent": len(alert_texts(db)), "retrying": 0, "failed": 0}
        assert store.claimed_count() == 0
    finally:
        store.close()
    printed = console.getvalue()
    texts = alert_texts(db)
    assert len(texts) > 10
    assert {text: printed.count(text) for text in texts} == dict.fromkeys(texts, 1)


async def test_a_drain_up_to_an_alert_leaves_later_alerts_waiting(store):
    now = utc(2025, 3, 3, 21)
    console = store.subscribe("console", "stdout")
    ids = [store.record_alert(AlertEvent("rut_ath", "new_ath", "^RUT", utc(2025, 3, day), {"price": 2400.0 + day}),
                              f"^RUT high {day}", now, [console]) for day in (1, 2, 3)]

    class Console:
        name = "console"

        def __init__(self) -> None:
            self.sent: list[str] = []

        async def send(self, chat, alert):
            self.sent.append(alert.text)
            return SENT

    notifier = Console()
    dispatcher = Dispatcher(store, {"console": notifier}, lambda: now, group_cycles=True)
    await dispatcher.drain(up_to_alert=ids[1])
    assert notifier.sent == ["2 alerts\n\n^RUT high 1\n\n^RUT high 2"]  # one cycle: one message
    assert store.outbox_counts()["pending"] == 1
    await dispatcher.drain()
    assert notifier.sent[1:] == ["^RUT high 3"]


def test_a_replay_killed_while_delivering_a_committed_batch_sends_each_alert_once(tmp_path, market_data):
    db = tmp_path / "replay.db"
    args = [sys.executable, "-m", "bot", "replay", "--config", str(write_config(tmp_path, market_data)),
            "--data", str(market_data),
            "--from", START.isoformat(), "--to", END.isoformat(), "--db", str(db)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # The console writes into a one-page pipe that is not read: the replay blocks mid-send, with the batch's
    # alerts committed, one claimed (being printed) and the later ones waiting. That is where it is killed.
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    with open(tmp_path / "first.err", "w") as err:
        first = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=write_end, stderr=err)
    os.close(write_end)
    try:
        states = None
        for _ in range(600):  # bounded: 60 s
            time.sleep(0.1)
            if first.poll() is not None:
                break
            counts = outbox(db)
            if counts.get("sent") and counts.get("claimed") and counts.get("pending") and counts == states:
                break  # blocked in a send after others: the same rows claimed twice in a row
            states = counts
        assert first.poll() is None, "the replay must still be blocked in a send"
        first.kill()
        first.wait(10)
        at_kill = outbox(db)
        sent_at_kill = sent_texts(db)
        os.set_blocking(read_end, False)
        printed_first = read_all(read_end)
    finally:
        os.close(read_end)
    assert at_kill["claimed"] and at_kill["sent"] and at_kill["pending"], at_kill
    second = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr
    assert f"{at_kill['claimed']} deliveries were being sent when riskon last stopped" in second.stderr
    printed = printed_first + second.stdout.split("replay done")[0]
    texts = alert_texts(db)
    assert len(texts) > 10
    # Only the message being printed at the kill may be printed again (its outcome was never recorded); an
    # alert of it that had wholly reached the pipe is then printed twice, every other alert exactly once.
    in_flight = {text for text in texts if text in printed_first and text not in sent_at_kill}
    assert len(in_flight) <= at_kill["claimed"]
    assert {text: printed.count(text) for text in texts} == {text: 1 + (text in in_flight) for text in texts}
    assert outbox(db) == {"sent": len(texts), "claimed": 0, "pending": 0}


def outbox(db: Path) -> dict[str, int]:
    """Read (another connection) how many deliveries are sent, claimed, and pending unclaimed."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            sent, claimed, pending = conn.execute(
                "select coalesce(sum(status = 'sent'), 0), coalesce(sum(claimed_at is not null), 0), "
                "coalesce(sum(status = 'pending' and claimed_at is null), 0) from deliveries").fetchone()
    except sqlite3.OperationalError:  # not created yet
        return {}
    return {"sent": sent, "claimed": claimed, "pending": pending}


def sent_texts(db: Path) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {text for (text,) in conn.execute(
            "select a.text from alerts a join deliveries d on d.alert_id = a.id where d.status = 'sent'")}


def read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
