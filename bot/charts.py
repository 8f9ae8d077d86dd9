"""Charts for outgoing alerts: drawn once per alert from the bars cache, shared by every chat it goes to."""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import timedelta
from typing import Any

from alerts.events import AlertEvent

log = logging.getLogger(__name__)

CHART_DAYS = 365
KEEP_CHARTS = 64  # alerts of one drain share a chart; older ones are long sent
# Channels that show text only: drawing for them would only slow a replay down.
TEXT_ONLY_CHANNELS = frozenset({"console"})


class AlertCharts:
    """Draw an alert's chart on first demand and hand the same PNG to every later chat."""

    def __init__(self, store: Any, days: int = CHART_DAYS, keep: int = KEEP_CHARTS) -> None:
        self.store = store
        self.days = days
        self.keep = keep
        self._drawn: OrderedDict[int, bytes | None] = OrderedDict()
        self.draws = 0  # how many charts were actually drawn (the rest came from the cache)

    def for_delivery(self, delivery: Any) -> bytes | None:
        """Return the chart of a delivery's alert (the Dispatcher's `chart_for`); None for text-only channels."""
        if delivery.channel in TEXT_ONLY_CHANNELS:
            return None
        return self.for_alert(delivery.alert_id, delivery.event)

    def for_alert(self, alert_id: int, event: AlertEvent) -> bytes | None:
        """Return the alert's chart, drawing it only the first time; None when it cannot be drawn."""
        if alert_id in self._drawn:
            self._drawn.move_to_end(alert_id)
            return self._drawn[alert_id]
        try:
            png = self._draw(event)
        except Exception:  # a chart is a bonus: the alert's text goes out without it
            log.exception("chart for alert %s (%s %s) could not be drawn", alert_id, event.rule_id, event.symbol)
            png = None
        self.draws += 1
        self._drawn[alert_id] = png
        while len(self._drawn) > self.keep:
            self._drawn.popitem(last=False)
        return png

    def _draw(self, event: AlertEvent) -> bytes | None:
        from alerts.charts import alert_chart

        since = event.bar_time - timedelta(days=self.days + 7)
        bars = self.store.load_bars(event.symbol, since=since)
        events = [row.event() for row in self.store.recent_alerts(200, include_silent=True)
                  if row.symbol == event.symbol and row.bar_time >= since]
        flows = self.store.load_flows(event.symbol, since=since)
        return alert_chart(event, bars, events=[e for e in events if e.bar_time <= event.bar_time], flows=flows,
                           days=self.days)
