"""Charts for outgoing alerts: drawn once per alert from the bars cache, shared by every chat it goes to."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from alerts.events import AlertEvent

log = logging.getLogger(__name__)

CHART_DAYS = 365
KEEP_CHARTS = 64  # alerts of one drain share a chart; older ones are long sent
# Channels that show text only: drawing for them would only slow a replay down.
TEXT_ONLY_CHANNELS = frozenset({"console"})


class AlertCharts:
    """Draw an alert's chart on first demand, off the event loop, and hand the same PNG to every later chat."""

    def __init__(self, store: Any, days: int = CHART_DAYS, keep: int = KEEP_CHARTS) -> None:
        self.store = store
        self.days = days
        self.keep = keep
        self._drawn: OrderedDict[int, asyncio.Future[bytes | None]] = OrderedDict()
        self.draws = 0  # how many charts were actually drawn (the rest came from the cache)
        # Its own drawing thread, ended by close(): the loop's shared executor would keep one alive after stop.
        self._drawer: ThreadPoolExecutor | None = None

    async def for_delivery(self, delivery: Any) -> bytes | None:
        """Return the chart of a delivery's alert (the Dispatcher's `chart_for`); None for text-only channels."""
        if delivery.channel in TEXT_ONLY_CHANNELS:
            return None
        return await self.for_alert(delivery.alert_id, delivery.event)

    async def for_alert(self, alert_id: int, event: AlertEvent) -> bytes | None:
        """Return the alert's chart, drawing it only the first time; None when it cannot be drawn."""
        drawing = self._drawn.get(alert_id)
        if drawing is None:
            # Every chat of the alert waits for this one drawing, even those that ask while it is under way.
            drawing = asyncio.ensure_future(self._draw(alert_id, event))
            self.draws += 1
            self._drawn[alert_id] = drawing
            while len(self._drawn) > self.keep:
                self._drawn.popitem(last=False)
        else:
            self._drawn.move_to_end(alert_id)
        return await asyncio.shield(drawing)  # one chat's send cancelled (a timeout) leaves the others' chart be

    async def _draw(self, alert_id: int, event: AlertEvent) -> bytes | None:
        try:
            since = event.bar_time - timedelta(days=self.days + 7)
            # Quick reads on the loop's own connection (WAL readers wait for no writer) ...
            bars = self.store.load_bars(event.symbol, since=since)
            events = [row.event() for row in self.store.recent_alerts(200, include_silent=True)
                      if row.symbol == event.symbol and since <= row.bar_time <= event.bar_time]
            flows = self.store.load_flows(event.symbol, since=since)
            # ... and the drawing on a worker thread: the first one imports matplotlib (about a second), each
            # takes a few hundred ms of CPU, and meanwhile chats are answered and other alerts go out.
            if self._drawer is None:
                self._drawer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="riskon-charts")
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._drawer, self._render, event, bars, events, flows)
        except Exception:  # a chart is a bonus: the alert's text goes out without it
            log.exception("chart for alert %s (%s %s) could not be drawn", alert_id, event.rule_id, event.symbol)
            return None

    def close(self) -> None:
        """End the drawing thread once a drawing under way is done."""
        if self._drawer is not None:
            self._drawer.shutdown(wait=True)
            self._drawer = None

    def _render(self, event: AlertEvent, bars: Any, events: Any, flows: Any) -> bytes | None:
        from alerts.charts import alert_chart

        return alert_chart(event, bars, events=events, flows=flows, days=self.days)
