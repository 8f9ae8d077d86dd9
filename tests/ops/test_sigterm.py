"""SIGTERM in the middle of a fan-out: `riskon run` drains and exits 0 within 10 s, and after a restart every
subscriber holds the alert exactly once."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from storage import Store
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.ops.bot_process import BotProcess

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Five seconds of sends at Telegram's 30 messages a second. The signal comes after 60; a stopping bot claims no new
# send (at most 32 are in flight), so the restart has chats left to serve.
SUBSCRIBERS = 150
FIRST_CHAT = 10_000


def write_history(folder: Path) -> None:
    """Write 60 days up to yesterday, then tomorrow: one new all-time high, the one alert of the run."""
    folder.mkdir()
    today = datetime.now(timezone.utc).date()
    lines = ["date,open,high,low,close,volume"]
    for offset in range(-60, 0):
        lines.append(f"{today + timedelta(days=offset)},1900,1905,1895,{1900 + offset},1000")
    lines.append(f"{today + timedelta(days=1)},1900,2010,1900,2000,1000")
    (folder / "RUT.csv").write_text("\n".join(lines) + "\n")


def config(folder: Path, telegram: FakeTelegram) -> str:
    tomorrow = datetime.now(timezone.utc).date() + timedelta(days=1)
    return f"""
storage: {{path: riskon.db}}
schedule: {{deliver_every_seconds: 0.5, retry_base_seconds: 0.5, retry_max_seconds: 2}}
feeds:
  replay: {{kind: replay, path: "{folder}", start: "{tomorrow}", every_seconds: 0.5}}
  # A second feed keeps the bot running once the replay has served its last day (it fails: nothing listens).
  dead: {{kind: exchange, exchange: kraken, base_url: "http://127.0.0.1:9", every_seconds: 5, timeout_seconds: 1}}
symbols:
  - {{id: "^RUT", feed: replay, csv: RUT, asset_class: index}}
  - {{id: BTC, feed: dead, source: BTC/USD, asset_class: crypto}}
rules:
  - {{id: rut_ath, kind: new_ath, symbols: ["^RUT"], min_history_days: 0}}
channels:
  telegram: {{token: "${{TELEGRAM_BOT_TOKEN}}", base_url: "{telegram.base_url}", poll_timeout_seconds: 1,
             register_commands: false}}
"""


def back_up_while_running(database: Path, folder: Path) -> list[Path]:
    """Copy the live database the two ways docs/operations.md shows, while the bot writes to it."""
    online, vacuumed = folder / "online.db", folder / "vacuumed.db"
    with sqlite3.connect(database) as live:
        with sqlite3.connect(online) as copy:
            live.backup(copy)  # the sqlite3 shell's .backup
        live.execute(f"VACUUM INTO '{vacuumed}'")
    live.close()
    copies = [online, vacuumed]
    if shutil.which("sqlite3"):  # the shell itself, where installed
        subprocess.run(["sqlite3", str(database), f".backup '{folder / 'shell.db'}'"], check=True, timeout=30)
        copies.append(folder / "shell.db")
    return copies


def outbox(path: Path) -> dict[str, str]:
    """Return each chat's delivery status, read from the database the bot left."""
    with sqlite3.connect(path) as db:
        return dict(db.execute("select chat_id, status from deliveries").fetchall())


async def subscribed_fan_out(tmp_path: Path) -> tuple[FakeTelegram, list[int]]:
    """Start the fake Telegram and write a database, history and config where SUBSCRIBERS chats await one alert."""
    telegram = await FakeTelegram(max_poll_seconds=1).start()
    chats = list(range(FIRST_CHAT, FIRST_CHAT + SUBSCRIBERS))
    store = Store.open(tmp_path / "riskon.db")
    for chat in chats:
        telegram.add_private_chat(chat)
        store.subscribe("telegram", str(chat))
    store.close()
    write_history(tmp_path / "data")
    (tmp_path / "config.yaml").write_text(config(tmp_path / "data", telegram))
    return telegram, chats


async def test_sigterm_mid_fan_out_exits_0_within_10_s_and_loses_nothing(tmp_path):
    telegram, chats = await subscribed_fan_out(tmp_path)
    alerts = lambda: [m for m in telegram.sent if "new all-time high" in m.text]  # noqa: E731
    runs = []
    try:
        for until in (60, SUBSCRIBERS):  # stop mid-fan-out, then after a restart once everyone has it
            bot = await BotProcess(["run", "--config", "config.yaml", "--json-logs"], tmp_path,
                                   env={"TELEGRAM_BOT_TOKEN": TOKEN}).start()
            try:
                # The signal handlers are in place once the bot listens (a signal before them kills it).
                await bot.wait_for_line("telegram: logged in as", 60)
                if not runs:  # a backup in the middle of the fan-out, while the outbox is being written
                    await telegram.wait_until(lambda: len(alerts()) >= 20, 60)
                    backups = back_up_while_running(tmp_path / "riskon.db", tmp_path)
                await telegram.wait_until(lambda until=until: len({m.chat_id for m in alerts()}) >= until, 60)
                received_at_signal = len(alerts())
                code, seconds = await bot.stop()
            finally:
                await bot.kill()
            runs.append((code, seconds, received_at_signal, len(alerts()), outbox(tmp_path / "riskon.db"), bot))
    finally:
        await telegram.stop()

    (code, seconds, at_signal, after_exit, first_outbox, first), (code2, seconds2, _, _, final_outbox, second) = runs
    assert code == 0 and code2 == 0, "\n".join(first.lines[-20:] + second.lines[-20:])
    assert seconds < 10 and seconds2 < 10, (seconds, seconds2)
    assert at_signal < SUBSCRIBERS, "the signal came mid-fan-out"
    assert after_exit < SUBSCRIBERS, "the first run served every chat before it exited: nothing left to restart"
    # At the exit, the outbox says exactly who has the alert: in-flight sends finished and were recorded.
    sent_first = {int(chat) for chat, status in first_outbox.items() if status == "sent"}
    received_first = [m.chat_id for m in alerts()[:after_exit]]
    assert sorted(received_first) == sorted(sent_first), "a message arrived that the outbox does not know of"
    assert set(first_outbox.values()) <= {"sent", "pending", "retrying"} and len(first_outbox) == SUBSCRIBERS
    # After the restart: everyone holds it, exactly once.
    copies = Counter(m.chat_id for m in alerts())
    assert set(copies) == set(chats), f"{len(set(chats) - set(copies))} subscribers lost the alert"
    assert [chat for chat, count in copies.items() if count > 1] == [], "a subscriber got the alert twice"
    assert set(final_outbox.values()) == {"sent"}
    # The backups taken mid-fan-out are whole, consistent databases that riskon opens.
    for backup in backups:
        with sqlite3.connect(backup) as db:
            assert db.execute("pragma integrity_check").fetchone() == ("ok",)
        copy = Store.open(backup)
        assert len(copy.active_subscriptions("telegram")) == SUBSCRIBERS and copy.alert_count() == 1
        assert sum(copy.outbox_counts().values()) == SUBSCRIBERS
        copy.close()
    # --json-logs: every line on stderr is one JSON object.
    for line in first.stderr + second.stderr:
        assert isinstance(json.loads(line), dict), line
    print(f"\nSIGTERM after {at_signal} of {SUBSCRIBERS} sends: exit 0 in {seconds:.2f} s; restart delivered "
          f"{SUBSCRIBERS - len(sent_first)} more, exit in {seconds2:.2f} s; lost 0, duplicates 0")


async def test_a_hangup_mid_fan_out_stops_as_sigterm_does_with_every_send_recorded(tmp_path):
    # The terminal `riskon run` was started from closes (an ssh session drops): SIGHUP. Its default action killed the
    # bot at once: the sends in flight were never recorded, and a restart would send them again.
    telegram, _ = await subscribed_fan_out(tmp_path)
    alerts = lambda: [m for m in telegram.sent if "new all-time high" in m.text]  # noqa: E731
    try:
        bot = await BotProcess(["run", "--config", "config.yaml"], tmp_path, env={"TELEGRAM_BOT_TOKEN": TOKEN}).start()
        try:
            await bot.wait_for_line("telegram: logged in as", 60)
            await telegram.wait_until(lambda: len(alerts()) >= 40, 60)
            code, seconds = await bot.stop(signal.SIGHUP)
        finally:
            await bot.kill()
        received = sorted(m.chat_id for m in alerts())
    finally:
        await telegram.stop()
    assert code == 0 and seconds < 10, (code, seconds, "\n".join(bot.lines[-20:]))
    assert len(received) < SUBSCRIBERS, "the signal came mid-fan-out"
    recorded = outbox(tmp_path / "riskon.db")
    assert sorted(int(chat) for chat, status in recorded.items() if status == "sent") == received
    with sqlite3.connect(tmp_path / "riskon.db") as db:
        assert db.execute("select count(*) from deliveries where claimed_at is not null").fetchone() == (0,)
    db.close()
