"""The scheduler: APScheduler jobs that poll each feed and drain the outbox, in one asyncio loop."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.feeds.base import Replayable
from bot.runtime import Runtime

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 8.0
FINAL_DRAIN_ROUNDS = 20


class Scheduler:
    """Poll every feed at its interval (backing off when it fails) and deliver alerts as they are recorded."""

    def __init__(self, runtime: Runtime, replay_seconds_per_bar: float | None = None) -> None:
        # replay_seconds_per_bar: None for live polling; 0 replays as fast as possible.
        self.runtime = runtime
        self.replay_seconds_per_bar = replay_seconds_per_bar
        self.scheduler = AsyncIOScheduler(
            timezone=timezone.utc,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.stopped = asyncio.Event()
        self.finished_replay = False

    def _wall_now(self) -> datetime:
        return datetime.now(timezone.utc)

    def _schedule_poll(self, name: str, at: datetime) -> None:
        # A fresh one-shot job per poll: re-adding the running job's own id would be refused by
        # max_instances, and the chain of polls would silently stop.
        self.scheduler.add_job(self._poll_job, "date", run_date=at, args=[name], name=f"poll {name}")

    def _next_poll(self, name: str) -> datetime:
        wall = self._wall_now()
        if self.replay_seconds_per_bar is not None:
            return wall + timedelta(seconds=self.replay_seconds_per_bar)
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
        return wall + timedelta(seconds=delay)

    async def _poll_job(self, name: str) -> None:
        if self.stopped.is_set():
            return
        try:
            report = await self.runtime.poll(name)
            alerted = report is not None and bool(report.alerts)
            if self.replay_seconds_per_bar is not None:
                # Feeds computed from stored bars (composites) step in lockstep with the replayed day,
                # instead of spinning on their own clock.
                for derived in self._derived_feeds():
                    derived_report = await self.runtime.poll(derived)
                    alerted = alerted or (derived_report is not None and bool(derived_report.alerts))
            elif report is not None and report.bars:
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
        feed = self.runtime.feeds[name]
        if isinstance(feed, Replayable) and feed.exhausted:
            await self._finish_replay()
            return
        if not self.stopped.is_set():
            self._schedule_poll(name, self._next_poll(name))

    async def _deliver_job(self) -> None:
        if self.stopped.is_set():
            return
        try:
            # Start the due chats' sends and return: a slow or rate-limited chat holds up only itself, and the
            # next tick is never skipped for a send still running.
            await self.runtime.deliver(wait=False)
        except Exception:
            log.exception("delivery job failed unexpectedly")

    async def _finish_replay(self) -> None:
        replays = [feed for feed in self.runtime.feeds.values() if isinstance(feed, Replayable)]
        if all(feed.exhausted for feed in replays):
            for _ in range(FINAL_DRAIN_ROUNDS):
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

    def _derived_feeds(self) -> list[str]:
        """Return the feeds a replay steps after each replayed day (every feed that is not itself a replay)."""
        return [name for name, feed in self.runtime.feeds.items() if not isinstance(feed, Replayable)]

    def start(self) -> None:
        """Schedule the first poll of every feed now and the delivery job at its interval."""
        now = self._wall_now()
        derived = set(self._derived_feeds()) if self.replay_seconds_per_bar is not None else set()
        # A composite polls right after its members' feeds bring bars (see _poll_job): polled at start beside
        # them, it would only find nothing yet and warn about it. Its own schedule starts an interval later.
        chained = {c for name in self.runtime.feeds for c in self._composites_reading(name)}
        for name in self.runtime.feeds:
            if name in chained and name not in derived:
                self._schedule_poll(name, self._next_poll(name))
            elif name not in derived:
                self._schedule_poll(name, now)
        self.scheduler.add_job(
            self._deliver_job, "interval", seconds=self.runtime.config.schedule.deliver_every_seconds,
            id="deliver", next_run_time=now,
        )
        self.scheduler.start()

    def stop(self) -> None:
        """Ask every job to stop after its current step."""
        self.stopped.set()

    async def run(self) -> None:
        """Run until stopped (a signal, or the end of a replay), then shut down cleanly."""
        self.start()
        try:
            await self.stopped.wait()
        finally:
            self.scheduler.shutdown(wait=False)
            await self._let_steps_finish()

    async def _let_steps_finish(self) -> None:
        """Wait (bounded) for a poll and a drain in progress, so every send made is also recorded."""
        if not await self.runtime.wait_idle(SHUTDOWN_GRACE_SECONDS):
            log.warning("a step was still running after %.0f s; stopping anyway", SHUTDOWN_GRACE_SECONDS)
