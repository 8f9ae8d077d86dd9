"""`riskon run` over a replay feed ends with its data, and only once every alert it recorded is sent."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from bot.config import parse_config
from bot.notifiers.base import SENT, ChatTarget, OutgoingAlert, SendOutcome
from bot.runtime import Runtime
from bot.scheduler import Scheduler

FUTURE_DAYS = 4


class SlowChat:
    """A chat service that takes half a second to answer each message (a far server, an upload)."""

    name = "slow"

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def start(self, listen: bool = True) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, chat: ChatTarget, alert: OutgoingAlert) -> SendOutcome:
        await asyncio.sleep(0.5)
        self.sent.append(alert.text)
        return SENT


async def test_the_run_waits_for_sends_in_flight_when_the_replayed_data_ends(store, tmp_path):
    today = datetime.now(timezone.utc).date()
    lines = ["date,open,high,low,close,volume"]
    for offset in range(-60, FUTURE_DAYS + 1):
        if offset:  # each day after today a new all-time high: news, since the bot started before it
            close = 2000.0 + offset * 10 if offset > 0 else 1900.0 + offset
            lines.append(f"{today + timedelta(days=offset)},{close},{close + 5},{close - 5},{close},1000")
    (tmp_path / "RUT.csv").write_text("\n".join(lines) + "\n")
    config = parse_config(f"""
feeds: {{replay: {{kind: replay, path: "{tmp_path}", start: "{today + timedelta(days=1)}", every_seconds: 0.05}}}}
symbols: [{{id: "^RUT", feed: replay, csv: RUT, asset_class: index}}]
rules: [{{id: rut_ath, kind: new_ath, symbols: ["^RUT"], rearm_pct: 0, min_history_days: 0}}]
schedule: {{deliver_every_seconds: 0.1}}
""")
    runtime = Runtime(config, store)
    chat = SlowChat()
    runtime.notifiers["slow"] = chat  # the dispatcher reads the same registry
    store.subscribe("slow", "1")
    scheduler = Scheduler(runtime)
    try:
        await asyncio.wait_for(scheduler.run(), 60)
    finally:
        await runtime.close()
    assert scheduler.finished_replay
    assert store.alert_count() == FUTURE_DAYS
    assert len(chat.sent) == FUTURE_DAYS, "the run stopped while a send was in flight; the rest were never sent"
