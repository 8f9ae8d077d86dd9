"""Charts on outgoing alerts: drawn once per alert for every chat, never holding back the text."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import timedelta

from alerts.bars import Bar, utc
from alerts.events import AlertEvent
from bot.charts import AlertCharts
from bot.delivery import Dispatcher
from bot.notifiers.base import SENT, ChatTarget, OutgoingAlert, SendOutcome
from bot.notifiers.console import ConsoleNotifier
from storage import Store

NOW = utc(2025, 1, 1)


class RecordingChat:
    """A chat service that keeps what it was sent (the adapters' side of the Notifier protocol)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[tuple[ChatTarget, OutgoingAlert]] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, chat: ChatTarget, alert: OutgoingAlert) -> SendOutcome:
        self.sent.append((chat, alert))
        return SENT


def history(store: Store, days: int) -> list[Bar]:
    bars = [Bar(NOW - timedelta(days=days - i), 100 + 5 * math.sin(i / 7) + i / 10, 106 + i / 10, 94 + i / 10,
                100 + 5 * math.sin(i / 7) + i / 10) for i in range(days)]
    store.upsert_bars("IWM", bars)
    return bars


def record(store: Store, bar: Bar) -> AlertEvent:
    event = AlertEvent("iwm_ath", "new_ath", "IWM", bar.time, {"price": bar.close, "by": "close"})
    store.record_alert(event, "IWM new all-time high", NOW, store.recipients(event, NOW))
    return event


async def test_every_chat_gets_the_same_chart_drawn_once(store):
    bars = history(store, 300)
    for chat in ("1", "2", "3"):
        store.subscribe("chat", chat, now=NOW)
    store.subscribe("console", "stdout", now=NOW)
    record(store, bars[-1])
    chat = RecordingChat("chat")
    charts = AlertCharts(store)
    dispatcher = Dispatcher(store, {"chat": chat, "console": ConsoleNotifier(open("/dev/null", "w"))},
                            lambda: NOW, chart_for=charts.for_delivery)
    report = await dispatcher.drain()
    assert report.outcomes[("chat", "sent")] == 3 and report.outcomes[("console", "sent")] == 1
    pngs = {alert.chart_png for _, alert in chat.sent}
    assert len(pngs) == 1 and next(iter(pngs)).startswith(b"\x89PNG")
    assert charts.draws == 1  # once per alert, not per chat; never for the text-only console


async def test_an_alert_without_enough_bars_goes_out_as_text(store):
    bars = history(store, 3)
    store.subscribe("chat", "1", now=NOW)
    record(store, bars[-1])
    chat = RecordingChat("chat")
    dispatcher = Dispatcher(store, {"chat": chat}, lambda: NOW, chart_for=AlertCharts(store).for_delivery)
    await dispatcher.drain()
    (_, alert), = chat.sent
    assert alert.chart_png is None and alert.text == "IWM new all-time high"


async def test_a_chart_that_fails_to_draw_never_blocks_the_text(store, caplog):
    bars = history(store, 60)
    store.subscribe("chat", "1", now=NOW)
    record(store, bars[-1])
    # The chart reads from a database that has gone away: drawing raises, the text still goes out.
    gone = Store.memory()
    gone.close()
    charts = AlertCharts(gone)
    chat = RecordingChat("chat")
    await Dispatcher(store, {"chat": chat}, lambda: NOW, chart_for=charts.for_delivery).drain()
    assert [(alert.text, alert.chart_png) for _, alert in chat.sent] == [("IWM new all-time high", None)]
    assert "could not be drawn" in caplog.text


def test_the_runtime_attaches_charts_to_deliveries(store, tmp_path):
    from bot.config import parse_config
    from bot.runtime import Runtime

    config = parse_config(f"""
feeds:
  history: {{kind: replay, path: "{tmp_path}"}}
symbols:
  - {{id: IWM, feed: history, asset_class: etf}}
rules:
  - {{id: iwm_ath, kind: new_ath, symbols: [IWM]}}
""")
    runtime = Runtime(config, store, clock=lambda: NOW)
    assert runtime.dispatcher.chart_for == runtime.charts.for_delivery


async def test_the_event_loop_keeps_turning_while_an_alert_chart_is_drawn(store):
    bars = history(store, 365)
    for chat in ("1", "2"):
        store.subscribe("chat", chat, now=NOW)
    record(store, bars[-1])
    chat = RecordingChat("chat")
    charts = AlertCharts(store)
    turns = 0

    async def turn() -> None:  # what a chat command or another chat's send needs: the loop, every millisecond
        nonlocal turns
        while True:
            await asyncio.sleep(0.001)
            turns += 1

    ticker = asyncio.create_task(turn())
    await asyncio.sleep(0.01)
    try:
        started, before = time.perf_counter(), turns
        await Dispatcher(store, {"chat": chat}, lambda: NOW, chart_for=charts.for_delivery).drain()
        seconds, during = time.perf_counter() - started, turns - before
    finally:
        ticker.cancel()
    assert charts.draws == 1 and all(alert.chart_png.startswith(b"\x89PNG") for _, alert in chat.sent)
    # Drawn on the loop, the drain would hold it for the whole drawing (0.1-1 s): a few turns at most.
    assert during >= 20, f"the loop turned {during} times in the {seconds:.2f} s the drain took"
