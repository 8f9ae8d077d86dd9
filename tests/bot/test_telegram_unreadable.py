"""An answer Telegram sends with HTTP success but python-telegram-bot cannot read: the message went, once."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from alerts.bars import utc
from alerts.events import AlertEvent
from alerts.messages import format_alert
from bot.config import parse_config
from bot.runtime import Runtime
from tests.fakes.telegram_api import TOKEN, FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ALICE, BOB = 111, 222
NOW = utc(2026, 9, 2, 21)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):
        return self.now


@pytest.fixture
async def fake():
    server = await FakeTelegram(chat_per_second=50, chat_burst=50, max_poll_seconds=0.3).start()
    server.add_private_chat(ALICE)
    server.add_private_chat(BOB)
    yield server
    await server.stop()


@pytest.fixture
# Not the shared `runtime` fixture (tests/conftest.py): started against the fake Telegram server with a movable clock.
async def runtime(store, fake, tmp_path):
    config = parse_config(f"""
feeds: {{replay: {{kind: replay, path: "{tmp_path}"}}}}
symbols: [{{id: "^RUT", feed: replay, asset_class: index}}, {{id: IWM, feed: replay, asset_class: etf}}]
rules: [{{id: rut_ath, kind: new_ath, symbols: ["^RUT", IWM]}}]
schedule: {{retry_base_seconds: 1, retry_max_seconds: 5}}
channels:
  telegram: {{token: "${{TELEGRAM_BOT_TOKEN}}", base_url: "{fake.base_url}", base_file_url: "{fake.base_file_url}",
              poll_timeout_seconds: 1, request_timeout_seconds: 2, chat_interval_seconds: 0.01,
              register_commands: false}}
""", env={"TELEGRAM_BOT_TOKEN": TOKEN})
    clock = Clock()
    running = Runtime(config, store, clock=clock)
    await running.start()
    yield running
    await running.close()


def fire(runtime: Runtime, symbol: str) -> None:
    event = AlertEvent("rut_ath", "new_ath", symbol, NOW - timedelta(hours=5),
                       {"price": 2500.0, "by": "close", "previous_ath": 2442.74, "previous_ath_time": "2021-11-08",
                        "days_since_previous_ath": 1400, "pct_above_previous": 2.3})
    store = runtime.store
    store.record_alert(event, format_alert(event), NOW, store.recipients(event, NOW))


@pytest.mark.parametrize("fault", ["unreadable", "unreadable-result"])
async def test_an_unreadable_success_counts_as_sent_and_the_chat_gets_the_alert_once(fake, runtime, fault, caplog):
    for chat in (ALICE, BOB):
        runtime.store.subscribe("telegram", str(chat))
    fire(runtime, "^RUT")
    fire(runtime, "IWM")  # one cycle: a grouped message
    fake.inject(fault, ALICE)
    for _ in range(4):  # each round past every retry delay: a send counted as failed would go again
        await runtime.deliver()
        runtime.clock.now += timedelta(minutes=5)
    assert len(fake.messages_to(ALICE)) == 1, [m.text[:40] for m in fake.messages_to(ALICE)]
    assert len(fake.messages_to(BOB)) == 1
    assert runtime.store.outbox_counts() == {"pending": 0, "sent": 4, "retrying": 0, "failed": 0}
    assert any("could not be read" in r.getMessage() and str(ALICE) in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("fault", ["unreadable", "unreadable-result"])
async def test_a_command_reply_with_an_unreadable_answer_is_logged_without_a_traceback(fake, runtime, fault, caplog):
    caplog.set_level(logging.INFO)
    fake.inject(fault, ALICE)
    fake.post_command(ALICE, ALICE, "/help")
    await fake.wait_until(lambda: len(fake.messages_to(ALICE)) >= 1, timeout=10)
    fake.post_command(ALICE, ALICE, "/help")  # and the bot goes on answering
    await fake.wait_until(lambda: len(fake.messages_to(ALICE)) >= 2, timeout=10)
    messages = [r.getMessage() for r in caplog.records]
    assert not any("No error handlers are registered" in m for m in messages), messages
    assert not any(r.exc_info or r.exc_text for r in caplog.records if r.name.startswith("bot.")), messages
    assert any("could not be read" in m for m in messages), messages
