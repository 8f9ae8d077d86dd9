"""The live bot's scheduler: one asyncio task per feed polls it, one drains the outbox, in riskon's own loop.

Plain asyncio tasks, not APScheduler: when a feed is polled next depends on how its last poll went (back-off,
market hours, a composite's members), which is a loop with a computed wait, not a trigger. A replay is driven
by bot.replay_loop and a rehearsal by bot.rehearsal (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.feeds.base import Replayable
from bot.feeds.libraries import preload
from bot.memory import release_free_memory
from bot.runtime import Runtime

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 8.0
FINAL_DRAIN_ROUNDS = 20


class Scheduler:
    """Poll every feed at its interval (backing off when it fails) and deliver alerts as they are recorded."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stopped = asyncio.Event()
        self.finished_replay = False
        self._tasks: list[asyncio.Task[None]] = []

    def _seconds_to_next_poll(self, name: str) -> float:
        runtime = self.runtime
        delay = runtime.config.feeds[name].every_seconds if name in runtime.config.feeds else 60.0
        health = runtime.health[name]
        if health.next_try is not None:
            delay = max(delay, (health.next_try - runtime.now()).total_seconds())
        feed = runtime.feeds[name]
        next_due = getattr(feed, "next_poll_time", None)
        if callable(next_due):
            # Market-hours feeds say when the next poll is worth making (e.g. the next NYSE open).
            due = next_due(runtime.now())
            if due is not None:
                delay = max(delay, (due - runtime.now()).total_seconds())
        return delay

    async def _wait(self, seconds: float) -> None:
        """Wait `seconds`, or less if the scheduler is stopped meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stopped.wait(), timeout=max(seconds, 0.0))

    async def _poll_feed(self, name: str, first_wait: float = 0.0) -> None:
        """Poll one feed, wait as long as its health and market hours say, and again, until stopped."""
        await self._wait(first_wait)
        while not self.stopped.is_set():
            await self._poll_once(name)
            feed = self.runtime.feeds[name]
            if isinstance(feed, Replayable) and feed.exhausted:  # `run` over a replay feed ends with its data
                await self._finish_replay()
                return
            await self._wait(self._seconds_to_next_poll(name))

    async def _poll_once(self, name: str) -> None:
        try:
            report = await self.runtime.poll(name)
            alerted = report is not None and bool(report.alerts)
            if report is not None and report.bars:
                # A composite reads its members' stored bars: recompute it as soon as they arrive, not a whole
                # interval later (on a fresh database, ALTS would otherwise wait five minutes for its first bar).
                for derived in self._composites_reading(name):
                    derived_report = await self.runtime.poll(derived)
                    alerted = alerted or (derived_report is not None and bool(derived_report.alerts))
            if alerted:
                await self.runtime.deliver(wait=False)  # tell traders at once, not at the next delivery tick
        except Exception:
            # A bug, not a source error (those are handled inside poll): log it loudly and keep polling.
            log.exception("poll of feed %s failed unexpectedly", name)
        # A poll's answers (parsed frames, a snapshot's slice of readings) are garbage now: give their pages back
        # rather than hold them free until the next burst. A few ms.
        release_free_memory()

    async def _deliver_every(self, seconds: float) -> None:
        """Drain the outbox now and every `seconds` (start to start); a late tick never runs twice to catch up."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not self.stopped.is_set():
            try:
                # Start the due chats' sends and return: a slow or rate-limited chat holds up only itself, and
                # the next tick is never skipped for a send still running.
                await self.runtime.deliver(wait=False)
            except Exception:
                log.exception("delivery job failed unexpectedly")
            due = max(due + seconds, loop.time())
            await self._wait(due - loop.time())

    async def _finish_replay(self) -> None:
        replays = [feed for feed in self.runtime.feeds.values() if isinstance(feed, Replayable)]
        if all(feed.exhausted for feed in replays):
            for _ in range(FINAL_DRAIN_ROUNDS):
                # Sends a tick started (a chart being drawn, a slow chat) finish first: a drain skips their chats,
                # so without this it could find nothing to send and end the run with their next alerts unsent.
                await self.runtime.wait_idle(SHUTDOWN_GRACE_SECONDS)
                report = await self.runtime.deliver()
                if not report.outcomes:
                    break
            self.finished_replay = True
            self.stop()

    def _composites_reading(self, name: str) -> list[str]:
        """Return the composite feeds with a member among the symbols feed `name` serves."""
        served = set(self.runtime.feed_symbols.get(name, ()))
        readers = []
        for feed_name, feed in self.runtime.config.feeds.items():
            if feed.kind != "composite" or feed_name == name or feed_name not in self.runtime.feeds:
                continue
            indexes = feed.settings.get("indexes") or {}
            members = {m for index in indexes.values() if isinstance(index, dict) for m in index.get("members", ())}
            if members & served:
                readers.append(feed_name)
        return readers

    def start(self) -> None:
        """Start polling every feed now, and draining the outbox now and at its interval."""
        # A composite polls right after its members' feeds bring bars (see _poll_once): polled at start beside
        # them, it would only find nothing yet and warn about it. Its own schedule starts an interval later.
        chained = {c for name in self.runtime.feeds for c in self._composites_reading(name)}
        preload(self.runtime.feeds.values())  # the lightest library first: the first poll goes out soonest
        for name in self.runtime.feeds:
            first_wait = self._seconds_to_next_poll(name) if name in chained else 0.0
            self._tasks.append(asyncio.create_task(self._poll_feed(name, first_wait), name=f"poll {name}"))
        every = self.runtime.config.schedule.deliver_every_seconds
        self._tasks.append(asyncio.create_task(self._deliver_every(every), name="deliver"))

    def stop(self) -> None:
        """Ask every task to stop after its current step."""
        self.stopped.set()

    async def shutdown(self) -> None:
        """Stop, let a poll and a drain in progress finish (bounded), then end the tasks."""
        self.stop()
        if not await self.runtime.wait_idle(SHUTDOWN_GRACE_SECONDS):
            log.warning("a step was still running after %.0f s; stopping anyway", SHUTDOWN_GRACE_SECONDS)
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()  # only a step that outlived the grace period is still running
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def run(self) -> None:
        """Run until stopped (a signal, or the end of a replay feed's data), then shut down cleanly."""
        self.start()
        try:
            await self.stopped.wait()
        finally:
            await self.shutdown()
