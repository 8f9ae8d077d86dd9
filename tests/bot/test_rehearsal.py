"""`riskon run --rehearse`: real history as if live, to the subscribed chats of the fake Telegram, marked as such."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from alerts.events import AlertEvent
from bot.notifiers.base import SENT, ChatTarget, OutgoingAlert
from bot.notifiers.discord.render import alert_message
from bot.rehearsal import RehearsalNotifier, rehearsal_text
from storage import Store
from tests.fakes.telegram_api import TOKEN, FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
REPO = Path(__file__).resolve().parents[2]
ALICE = 111


async def read_until(stream: asyncio.StreamReader, marker: str, seen: list[str], timeout: float) -> None:
    """Collect log lines until one holds `marker`; fail after `timeout` seconds."""
    async def scan() -> None:
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"riskon ended before logging {marker!r}:\n" + "".join(seen))
            seen.append(line)
            if marker in line:
                return

    await asyncio.wait_for(scan(), timeout)


async def test_a_rehearsal_alerts_the_subscribed_chat_marked_and_keeps_answering_after_the_last_day(
        market_data, tmp_path):
    fake = await FakeTelegram(max_poll_seconds=1).start()
    fake.add_private_chat(ALICE)
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({
        "storage": {"path": str(tmp_path / "riskon.db")},
        "feeds": {"yahoo": {"kind": "yahoo"}},  # replaced by the rehearsal's replay of the folder
        "symbols": [{"id": "^RUT", "feed": "yahoo", "csv": "RUT"}],
        "rules": [{"id": "rut_ath", "kind": "new_ath", "symbols": ["^RUT"]}],
        "channels": {"telegram": {"token": "${TELEGRAM_BOT_TOKEN}", "base_url": fake.base_url,
                                  "poll_timeout_seconds": 1}},
    }))
    live = Store.open(tmp_path / "riskon.db")
    live.subscribe("telegram", str(ALICE))
    live.close()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config), "--rehearse", str(market_data),
        "--from", "2026-08-01", "--speed", "max", cwd=tmp_path, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg", "TELEGRAM_BOT_TOKEN": TOKEN},
    )
    log: list[str] = []
    try:
        assert process.stderr is not None
        await read_until(process.stderr, "rehearsal finished", log, timeout=90)
        await fake.wait_until(lambda: len(fake.messages_to(ALICE)) >= 4, timeout=20)
        alerts = list(fake.messages_to(ALICE))
        # After the last replayed day the bot still answers, with the replayed market.
        fake.post_command(ALICE, ALICE, "/status ^RUT")
        await fake.wait_until(lambda: len(fake.messages_to(ALICE)) > len(alerts), timeout=20)
        status = fake.messages_to(ALICE)[-1].text
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
        await fake.stop()

    assert code == 0, "".join(log)
    # ^RUT's four new highs of August 2026, each marked as a rehearsal on its headline and at its end, with a chart.
    assert len(alerts) == 4
    assert all(m.text.startswith("<b>🎭 REHEARSAL · 📈 ^RUT new all-time high") for m in alerts)
    assert all("Rehearsal on the history of 2026-08-" in m.text and "not a live signal" in m.text for m in alerts)
    assert all(m.photo for m in alerts)
    assert "2,837.55" in status, status  # the close of 2026-09-25, the data's last day
    # The live database saw nothing of it: no alert, no bar.
    live = Store.open(tmp_path / "riskon.db")
    assert live.recent_alerts(10, include_silent=True) == [] and live.last_bar_time("^RUT") is None
    live.close()


def test_rehearsal_marks_the_headline_and_says_which_day_it_replays():
    from datetime import datetime, timezone

    event = AlertEvent("rut_ath", "new_ath", "^RUT", datetime(2024, 11, 8, tzinfo=timezone.utc))
    text = rehearsal_text(OutgoingAlert((event,), "📈 ^RUT new all-time high\nBar: 2024-11-08"))
    assert text.splitlines() == ["🎭 REHEARSAL · 📈 ^RUT new all-time high", "Bar: 2024-11-08",
                                 "Rehearsal on the history of 2024-11-08: replayed, not a live signal."]


def test_from_and_speed_need_rehearse(tmp_path):
    from bot.cli import main

    assert main(["run", "--config", str(tmp_path / "none.yaml"), "--speed", "5"]) == 1


class Recorder:
    """A notifier that keeps what it was asked to send."""

    name = "discord"

    def __init__(self) -> None:
        self.sent: list[OutgoingAlert] = []

    async def send(self, chat, alert):
        self.sent.append(alert)
        return SENT


async def test_each_alert_of_a_grouped_message_is_marked_as_a_rehearsal_on_discord():
    from datetime import datetime, timezone

    day = datetime(2026, 8, 4, tzinfo=timezone.utc)
    events = (AlertEvent("smallcap_ath", "new_ath", "^RUT", day), AlertEvent("smallcap_ath", "new_ath", "IWM", day))
    texts = ("📈 ^RUT new all-time high\nBar: 2026-08-04", "📈 IWM new all-time high\nBar: 2026-08-04")
    inner = Recorder()
    await RehearsalNotifier(inner).send(ChatTarget("1"), OutgoingAlert(events, "2 alerts\n\n" + "\n\n".join(texts),
                                                                       None, texts))
    embeds = alert_message(inner.sent[0]).embeds
    assert [e.title for e in embeds] == ["🎭 REHEARSAL · 📈 ^RUT new all-time high",
                                         "🎭 REHEARSAL · 📈 IWM new all-time high"]
    assert all("replayed, not a live signal" in e.description for e in embeds)
