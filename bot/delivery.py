"""The delivery job: drain the outbox through the notifiers, recording every outcome as it happens."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Mapping

from alerts.policy import group_alerts, merged_text
from bot.notifiers.base import ChatTarget, Notifier, OutgoingAlert, SendOutcome
from storage import Delivery, Store

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 60.0


@dataclass
class DrainReport:
    """Outcomes of one drain of the outbox."""

    outcomes: Counter = field(default_factory=Counter)  # (channel, status) -> count
    delivered: list[Delivery] = field(default_factory=list)


def retry_delay(attempts: int, base: float, cap: float, retry_after: float | None, rng: random.Random) -> float:
    """Return seconds before the next attempt: the service's retry-after if given, else capped backoff with jitter."""
    backoff = min(cap, base * (2 ** max(attempts - 1, 0)))
    delay = backoff * (0.5 + rng.random() / 2)
    return max(delay, retry_after or 0.0)


class Dispatcher:
    """Send due deliveries, one chat at a time in order, many chats at once per channel."""

    def __init__(
        self,
        store: Store,
        notifiers: Mapping[str, Notifier],
        clock: Callable[[], datetime],
        retry_base_seconds: float = 5.0,
        retry_max_seconds: float = 900.0,
        max_attempts: int = 12,
        concurrency: int = 32,
        chart_for: Callable[[Delivery], bytes | None] | None = None,
        group_cycles: bool = False,
    ) -> None:
        self.store = store
        self.notifiers = notifiers
        self.clock = clock
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.chart_for = chart_for
        # Alerts of one engine cycle for one chat go out as one message (alerts.policy.group_alerts).
        self.group_cycles = group_cycles
        self.rng = random.Random()
        self._missing_channels_logged: set[str] = set()
        self.totals: Counter = Counter()
        self.retries_in_a_row: Counter = Counter()  # channel -> sends retried since its last success (/healthz)
        # One drain at a time: the poll job drains right after recording alerts while the delivery job ticks on,
        # and two drains at once would read the same pending rows and send each chat its alert twice.
        self._draining = asyncio.Lock()

    async def drain(self, limit: int = 5000) -> DrainReport:
        """Send every delivery that is due now (after any drain already running); return what happened."""
        async with self._draining:
            return await self._drain(limit)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait (bounded) for a drain in progress to finish; say whether it did in time."""
        try:
            await asyncio.wait_for(self._draining.acquire(), timeout)
        except TimeoutError:
            return False
        self._draining.release()
        return True

    async def _drain(self, limit: int) -> DrainReport:
        report = DrainReport()
        due = self.store.due_deliveries(self.clock(), limit)
        by_chat: dict[tuple[str, str, str], list[Delivery]] = defaultdict(list)
        for delivery in due:
            if delivery.channel not in self.notifiers:
                if delivery.channel not in self._missing_channels_logged:
                    log.warning("deliveries for channel %r wait: that channel is not configured", delivery.channel)
                    self._missing_channels_logged.add(delivery.channel)
                continue
            by_chat[(delivery.channel, delivery.chat_id, delivery.thread_id)].append(delivery)
        limits: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(self.concurrency))

        async def send_chat(key: tuple[str, str, str], items: list[Delivery]) -> None:
            async with limits[key[0]]:
                # Alerts of one engine cycle go to a chat as one message (split only past a message's size).
                if self.group_cycles:
                    groups = group_alerts(items, chat_of=lambda d: key, cycle_of=lambda d: d.fired_at or d.alert_id,
                                          text_of=lambda d: d.text)
                else:
                    groups = [[d] for d in items]
                for group in groups:
                    outcome = await self._send(group)
                    for delivery in group:
                        self._record(delivery, outcome, report)
                    if outcome.status != "sent":
                        break  # keep this chat's alerts in order: the rest wait for the next drain

        await asyncio.gather(*(send_chat(key, items) for key, items in by_chat.items()))
        return report

    async def _send(self, group: list[Delivery]) -> SendOutcome:
        delivery = group[0]
        notifier = self.notifiers[delivery.channel]
        chart = None
        if self.chart_for is not None and len(group) == 1:
            try:
                chart = self.chart_for(delivery)
            except Exception:  # a chart is a bonus: never let it block the alert's text
                log.exception("chart for alert %s could not be drawn", delivery.alert_id)
        alert = OutgoingAlert(tuple(d.event for d in group), merged_text([d.text for d in group]), chart)
        try:
            return await asyncio.wait_for(
                notifier.send(ChatTarget(delivery.chat_id, delivery.thread_id), alert), SEND_TIMEOUT_SECONDS
            )
        except TimeoutError:
            return SendOutcome("retry", None, f"{delivery.channel}: send timed out")
        except Exception as exc:  # an adapter bug must not stop the other channels
            log.exception("%s notifier raised while sending alert %s", delivery.channel, delivery.alert_id)
            return SendOutcome("retry", None, f"{delivery.channel}: {type(exc).__name__}: {exc}")

    def _record(self, delivery: Delivery, outcome: SendOutcome, report: DrainReport) -> None:
        now = self.clock()
        status = outcome.status
        if status == "sent":
            self.retries_in_a_row[delivery.channel] = 0
            self.store.mark_sent(delivery.id, now)
            report.delivered.append(delivery)
        elif status == "retry" and delivery.attempts + 1 < self.max_attempts:
            self.retries_in_a_row[delivery.channel] += 1
            delay = retry_delay(
                delivery.attempts + 1, self.retry_base_seconds, self.retry_max_seconds, outcome.retry_after, self.rng
            )
            self.store.mark_retry(delivery.id, now + timedelta(seconds=delay), outcome.error)
            log.info("%s chat %s: %s; retrying in %.0f s", delivery.channel, delivery.chat_id, outcome.error, delay)
        else:
            status = "failed"
            self.store.mark_failed(delivery.id, outcome.error or "gave up after retries")
            log.warning("%s chat %s: delivery failed for good: %s", delivery.channel, delivery.chat_id, outcome.error)
            if outcome.chat_gone and delivery.subscription_id is not None:
                self.store.deactivate_subscription(delivery.subscription_id, outcome.error)
                log.warning("%s chat %s: subscription deactivated (%s)", delivery.channel, delivery.chat_id,
                            outcome.error)
        report.outcomes[(delivery.channel, status)] += 1
        self.totals[(delivery.channel, status)] += 1
