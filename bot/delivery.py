"""The delivery job: drain the outbox through the notifiers, recording every outcome as it happens.

Each due row is claimed (committed) right before it is sent, and no drain picks up a claimed row, so a row is
never sent twice by one run; an outcome the database cannot take yet stays claimed and is kept in memory until it can.
Only a row still claimed when a run dies is sent again, once, by the next run.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Awaitable, Callable, Mapping

from alerts.policy import group_alerts, merged_text
from bot.backoff import backoff_seconds
from bot.notifiers.base import ChatTarget, Notifier, OutgoingAlert, SendOutcome
from storage import Delivery, Store
from storage.base import STORE_ERRORS
from storage.thread import DatabaseThread

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 60.0
OUTCOME_WRITE_TRIES = 2  # each waits out the busy timeout; then the outcome waits in memory for the next drain
OUTCOME_WRITE_PAUSE_SECONDS = (0.05, 1.0)  # the back-off after a refused outcome write: first pause, longest
ChatKey = tuple[str, str, str]  # channel, chat, thread


@dataclass
class DrainReport:
    """Outcomes of one drain of the outbox."""

    outcomes: Counter = field(default_factory=Counter)  # (channel, status) -> count
    delivered: list[Delivery] = field(default_factory=list)


def retry_delay(attempts: int, base: float, cap: float, retry_after: float | None, rng: random.Random) -> float:
    """Return seconds before the next attempt: the service's retry-after if given, else capped backoff with jitter."""
    # Sending before the service allows would only earn another 429.
    return max(backoff_seconds(attempts, base, cap, rng), retry_after or 0.0)


class Dispatcher:
    """Send due deliveries: each chat on its own, its alerts in order; many chats at once per channel."""

    def __init__(
        self,
        store: Store,
        notifiers: Mapping[str, Notifier],
        clock: Callable[[], datetime],
        retry_base_seconds: float = 5.0,
        retry_max_seconds: float = 900.0,
        max_attempts: int = 12,
        concurrency: int = 32,
        chart_for: Callable[[Delivery], Awaitable[bytes | None]] | None = None,
        group_cycles: bool = False,
        database: DatabaseThread | None = None,
        send_timeout_seconds: float = SEND_TIMEOUT_SECONDS,
    ) -> None:
        self.store = store  # reads, on the loop's connection
        # Writes (claims, outcomes) go through the database thread, so a locked database never stalls the loop.
        self.database = database or DatabaseThread(store, threaded=False)
        self.notifiers = notifiers
        self.clock = clock
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.chart_for = chart_for
        self.send_timeout_seconds = send_timeout_seconds  # a send still unanswered then is retried later
        # Alerts of one engine cycle for one chat go out as one message (alerts.policy.group_alerts).
        self.group_cycles = group_cycles
        self.rng = random.Random()
        self._missing_channels_logged: set[str] = set()
        self._outbox_read_to = 0  # the outbox rows looked at for channels that are not configured
        self.totals: Counter = Counter()
        self.retries_in_a_row: Counter = Counter()  # channel -> sends retried since its last success (/healthz)
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._chats_sending: set[ChatKey] = set()
        self._tasks: set[asyncio.Task] = set()
        self._unrecorded: list[Callable[[], None]] = []  # outcome writes the database refused so far
        self._stale_claims_released = False
        self._store_trouble: dict[str, str] = {}  # step -> the error it met, logged once per change
        self.stopping = False  # a signal came: claim nothing more

    def stop_sending(self) -> None:
        """Claim nothing more (a stop signal): sends in flight finish and are recorded, the rest wait."""
        # Without it a SIGTERM let the drain in hand go on sending new chats until the 8 s grace ran out.
        self.stopping = True

    async def drain(self, limit: int = 5000, wait: bool = True, up_to_alert: int | None = None) -> DrainReport:
        """Start sending every delivery due now (with `up_to_alert`, of alerts up to that id); with `wait`, return
        once those sends are done and recorded."""
        report = DrainReport()
        if self.stopping:
            return report
        if not await self._write_unrecorded() or not await self._release_stale_claims():
            return report  # the database takes no writes yet: claim nothing, send nothing
        try:
            due = self.store.due_deliveries(self.clock(), limit, channels=tuple(self.notifiers),
                                            up_to_alert=up_to_alert)
        except STORE_ERRORS as exc:
            self._store_failed("read", "cannot read the outbox; nothing is sent until it can", exc)
            return report
        self._store_ok("read", "the outbox can be read again")
        self._log_missing_channels()
        by_chat: dict[ChatKey, list[Delivery]] = defaultdict(list)
        for delivery in due:
            key = (delivery.channel, delivery.chat_id, delivery.thread_id)
            if key not in self._chats_sending:  # a chat's sends in progress finish before its next ones start
                by_chat[key].append(delivery)
        if "claim" in self._store_trouble:
            by_chat = dict(list(by_chat.items())[:1])  # the database refused the last claim: probe with one chat
        started = []
        for key, items in by_chat.items():
            self._chats_sending.add(key)
            task = asyncio.create_task(self._send_chat(key, items, report), name=f"deliver {key[0]} {key[1]}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started.append(task)
        if wait and started:
            await asyncio.gather(*started, return_exceptions=True)
        return report

    async def record_held_outcomes(self) -> None:
        """Try once more to write the outcomes the database refused (at shutdown)."""
        if self._unrecorded and not await self._write_unrecorded():
            log.warning("outbox database: %d send outcome(s) could not be recorded before stopping; their rows "
                        "stay claimed and are sent again at the next start", len(self._unrecorded))

    async def wait_idle(self, timeout: float) -> bool:
        """Wait (bounded) for every chat's sends in progress; say whether they all finished."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            return not pending
        return True

    def _log_missing_channels(self) -> None:
        try:
            # Only the rows added since the last drain: a row waits from the moment it is added, so a channel
            # that waits is seen then, without reading every waiting row again on every drain.
            waiting, self._outbox_read_to = self.store.waiting_channels(self._outbox_read_to)
        except STORE_ERRORS:
            return
        for channel in waiting - set(self.notifiers) - self._missing_channels_logged:
            log.warning("deliveries for channel %r wait: that channel is not configured", channel)
            self._missing_channels_logged.add(channel)

    async def _send_chat(self, key: ChatKey, items: list[Delivery], report: DrainReport) -> None:
        """Send one chat its due alerts in order, stopping at the first that does not go through."""
        try:
            async with self._limit(key[0]):
                if self.stopping:
                    return  # nothing claimed: the chat's rows stay due for the next start
                items = await self._claim(items)
                if not items:
                    return
                # Alerts of one engine cycle go to a chat as one message (split only past a message's size).
                if self.group_cycles:
                    groups = group_alerts(items, chat_of=lambda d: key, cycle_of=lambda d: d.fired_at or d.alert_id,
                                          text_of=lambda d: d.text)
                else:
                    groups = [[d] for d in items]
                attempted: set[int] = set()
                for group in groups:
                    outcome = await self._send(group)
                    if outcome.status == "held":
                        break  # never left: back in the outbox as it was, with the chat's later alerts
                    attempted.update(d.id for d in group)
                    await self._record(group, outcome, report)
                    if outcome.status != "sent":
                        break  # keep this chat's alerts in order: the rest wait for the next drain
                rest = [d.id for d in items if d.id not in attempted]
                if rest:
                    writer = self.database.store
                    await self._write(lambda: writer.release_claims(rest))
        except Exception:  # a bug: its claimed rows stay claimed (never sent twice), the other chats go on
            log.exception("%s chat %s: delivery stopped unexpectedly", key[0], key[1])
        finally:
            self._chats_sending.discard(key)

    async def _claim(self, items: list[Delivery]) -> list[Delivery]:
        """Claim a chat's rows (committed) right before sending them; return those this drain now owns."""
        try:
            claimed = set(await self.database.run(self.database.store.claim_deliveries, [d.id for d in items],
                                                  self.clock()))
        except STORE_ERRORS as exc:
            self._store_failed("claim", "cannot claim deliveries before sending them; nothing is sent until it can",
                               exc)
            return []
        self._store_ok("claim", "deliveries can be claimed again; sending resumes")
        return [d for d in items if d.id in claimed]

    def _limit(self, channel: str) -> asyncio.Semaphore:
        if channel not in self._limits:
            self._limits[channel] = asyncio.Semaphore(self.concurrency)
        return self._limits[channel]

    async def _send(self, group: list[Delivery]) -> SendOutcome:
        delivery = group[0]
        notifier = self.notifiers[delivery.channel]
        chart = None
        if self.chart_for is not None:
            # A message grouping several alerts shows its first alert's chart: the alert its text leads with
            # (the first rule, on the first symbol, in config order), so the picture matches the headline.
            try:
                chart = await self.chart_for(delivery)
            except Exception:  # a chart is a bonus: never let it block the alert's text
                log.exception("chart for alert %s could not be drawn", delivery.alert_id)
        texts = tuple(d.text for d in group)
        alert = OutgoingAlert(tuple(d.event for d in group), merged_text(list(texts)), chart,
                              texts if len(group) > 1 else ())
        try:
            # In this task, not a task of its own as wait_for would make one for every send.
            async with asyncio.timeout(self.send_timeout_seconds):
                return await notifier.send(ChatTarget(delivery.chat_id, delivery.thread_id), alert)
        except TimeoutError:
            return SendOutcome("retry", None, f"{delivery.channel}: send timed out")
        except Exception as exc:  # an adapter bug must not stop the other channels
            log.exception("%s notifier raised while sending alert %s", delivery.channel, delivery.alert_id)
            return SendOutcome("retry", None, f"{delivery.channel}: {type(exc).__name__}: {exc}")

    async def _record(self, group: list[Delivery], outcome: SendOutcome, report: DrainReport) -> None:
        """Record the outcome of one message for every delivery it carried, in one transaction."""
        now = self.clock()
        writes = [self._outcome(delivery, outcome, report, now) for delivery in group]
        if len(writes) == 1:
            await self._write(writes[0])
            return
        store = self.database.store

        def write_all() -> None:
            with store.transaction():  # the message's alerts are sent together: their outcomes are kept together
                for write in writes:
                    write()

        await self._write(write_all)

    def _outcome(self, delivery: Delivery, outcome: SendOutcome, report: DrainReport, now: datetime,
                 ) -> Callable[[], None]:
        """Count one delivery's outcome and return the write that records it."""
        status = outcome.status
        store = self.database.store
        write: Callable[[], None]
        if status == "sent":
            self.retries_in_a_row[delivery.channel] = 0
            write = lambda: store.mark_sent(delivery.id, now)  # noqa: E731
            report.delivered.append(delivery)
        elif status == "retry" and delivery.attempts + 1 < self.max_attempts:
            self.retries_in_a_row[delivery.channel] += 1
            delay = retry_delay(
                delivery.attempts + 1, self.retry_base_seconds, self.retry_max_seconds, outcome.retry_after, self.rng
            )
            at = now + timedelta(seconds=delay)
            write = lambda: store.mark_retry(delivery.id, at, outcome.error)  # noqa: E731
            log.info("%s chat %s: %s; retrying in %.0f s", delivery.channel, delivery.chat_id, outcome.error, delay)
        else:
            status = "failed"
            log.warning("%s chat %s: delivery failed for good: %s", delivery.channel, delivery.chat_id, outcome.error)
            gone = outcome.chat_gone and delivery.subscription_id is not None

            def write() -> None:
                with store.transaction():
                    store.mark_failed(delivery.id, outcome.error or "gave up after retries")
                    if gone and delivery.subscription_id is not None:
                        store.deactivate_subscription(delivery.subscription_id, outcome.error)

            if gone:
                log.warning("%s chat %s: subscription deactivated (%s)", delivery.channel, delivery.chat_id,
                            outcome.error)
        report.outcomes[(delivery.channel, status)] += 1
        self.totals[(delivery.channel, status)] += 1
        return write

    # --- writing outcomes whatever the database does ---------------------------------------------
    async def _write(self, write: Callable[[], None]) -> None:
        """Write an outcome, retrying a few times; if the database still refuses, keep it for the next drain."""
        if self._unrecorded:  # the database is refusing writes: queue behind the others, retried each drain
            self._unrecorded.append(write)
            return
        error: BaseException | None = None
        for refused in range(1, OUTCOME_WRITE_TRIES + 1):
            try:
                await self.database.run(write)
                return
            except STORE_ERRORS as exc:
                error = exc
            await asyncio.sleep(backoff_seconds(refused, *OUTCOME_WRITE_PAUSE_SECONDS, self.rng))
        self._unrecorded.append(write)
        assert error is not None
        self._store_failed("record", "cannot record send outcomes; they wait in memory (their rows stay claimed, "
                                     "so nothing is sent twice) and are written as soon as it can", error)

    async def _write_unrecorded(self) -> bool:
        """Write the outcomes the database refused earlier, in one transaction; say whether none is left."""
        if not self._unrecorded:
            return True
        waiting = list(self._unrecorded)
        writer = self.database.store

        def write_all() -> None:
            with writer.transaction():
                for write in waiting:
                    write()

        try:
            await self.database.run(write_all)
        except STORE_ERRORS as exc:
            self._store_failed("record", "cannot record send outcomes; they wait in memory", exc)
            return False
        del self._unrecorded[:len(waiting)]
        self._store_ok("record", f"recorded {len(waiting)} send outcome(s) held while the database refused writes")
        return not self._unrecorded

    async def _release_stale_claims(self) -> bool:
        """Once per run: put back rows an earlier run claimed and never recorded (it died mid-send)."""
        if self._stale_claims_released:
            return True
        try:
            stale = await self.database.run(self.database.store.release_stale_claims)
        except STORE_ERRORS as exc:
            self._store_failed("release", "cannot release the claims of the last run; nothing is sent until it can",
                               exc)
            return False
        self._stale_claims_released = True
        self._store_ok("release", "the claims of the last run are released")
        if stale:
            log.warning("%d deliveries were being sent when riskon last stopped; sending them again "
                        "(a chat may see such an alert twice)", stale)
        return True

    def _store_failed(self, step: str, consequence: str, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if self._store_trouble.get(step) != error:  # once per change of state, not once per tick
            log.warning("outbox database: %s (%s)", consequence, error)
        self._store_trouble[step] = error

    def _store_ok(self, step: str, message: str) -> None:
        if self._store_trouble.pop(step, None) is not None:
            log.info("outbox database: %s", message)
