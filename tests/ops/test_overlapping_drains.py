"""Two drains of the outbox at once (the poll job's, right after new alerts, and the delivery job's tick) send once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timezone

import pytest

from alerts.events import AlertEvent
from alerts.messages import format_alert
from bot.config import parse_config
from bot.runtime import Runtime
from tests.fakes.telegram_api import TOKEN, FakeTelegram, riskon_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CHATS = range(30_000, 30_100)
VALUES = {"price": 2500.0, "previous_ath": 2442.74, "previous_ath_time": "2021-11-08", "pct_above_previous": 2.3,
          "days_since_previous_ath": 1400}


async def test_overlapping_drains_send_each_chat_one_copy(store, tmp_path):
    fake = await FakeTelegram(overall_per_second=500, max_poll_seconds=0.3).start()
    for chat_id in CHATS:
        fake.add_private_chat(chat_id)
    config = parse_config(riskon_config(fake, tmp_path, telegram={"messages_per_second": 400}),
                          env={"TELEGRAM_BOT_TOKEN": TOKEN})
    runtime = Runtime(config, store)
    now = datetime.now(timezone.utc)
    try:
        for chat_id in CHATS:
            runtime.store.subscribe("telegram", str(chat_id))
        event = AlertEvent("rut_ath", "new_ath", "^RUT", now, VALUES)
        runtime.store.record_alert(event, format_alert(event), now, runtime.store.recipients(event, now))
        await runtime.start()
        first, second = await asyncio.gather(runtime.deliver(), runtime.deliver())
        await runtime.close()
    finally:
        await fake.stop()
    copies = Counter(message.chat_id for message in fake.sent)
    assert set(copies) == set(CHATS) and set(copies.values()) == {1}
    assert first.outcomes[("telegram", "sent")] + second.outcomes[("telegram", "sent")] == len(CHATS)
