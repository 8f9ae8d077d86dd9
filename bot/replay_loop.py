"""The replay loop: history stepped day by day through the live Runtime, a batch of days per transaction.

A replay needs no scheduler: it is a plain loop. Each day is one poll of the replay feed, then one poll of each
feed computed from stored bars (composites), exactly as `riskon run` polls; a batch of days goes to the Engine
in one transaction, and the alerts it recorded are delivered before the next batch.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from datetime import datetime

from bot.feeds import FeedResult
from bot.feeds.base import Replayable
from bot.feeds.composite import CompositeFeed
from bot.feeds.served import ServedBars
from bot.notifiers.console import ConsoleNotifier
from bot.runtime import Runtime
from storage.base import STORE_ERRORS

log = logging.getLogger(__name__)

BATCH_DAYS = 256  # days per transaction at full speed: a year of daily bars, a few hundred rule-state rows
FINAL_DRAIN_ROUNDS = 20


class ReplayLoop:
    """Replay every replay feed to its end (or until stopped), then deliver what is left."""

    def __init__(self, runtime: Runtime, seconds_per_day: float = 0.0, batch_days: int = BATCH_DAYS,
                 deliver_each_poll: bool = False) -> None:
        # seconds_per_day: 0 replays as fast as possible; above 0, one day per batch at that pace.
        # deliver_each_poll: commit and deliver after each alerting poll, before the next is ingested (a rehearsal:
        # a chat's send can unsubscribe it, a command can come, its delivery ticker drains meanwhile, and an alert's
        # chart reads the bars stored by then). Without it, a batch is one transaction and its polls' alerts are
        # delivered after it, poll by poll: only the console listens (text, no chart), and no send's outcome
        # changes what a later poll records.
        self.runtime = runtime
        self.deliver_each_poll = deliver_each_poll
        self.seconds_per_day = seconds_per_day
        self.batch_days = 1 if seconds_per_day > 0 else max(1, batch_days)
        self.stopped = asyncio.Event()
        self.finished_replay = False
        self.failure = ""  # why the replay stopped before its last day, when a batch failed
        self.replays = [name for name, feed in runtime.feeds.items() if isinstance(feed, Replayable)]
        # Asked after every day: the protocol check (which reads each property) is done once, here.
        self._replay_feeds = [feed for feed in runtime.feeds.values() if isinstance(feed, Replayable)]
        # Feeds computed from stored bars (composites) step in lockstep with the replayed day.
        self.derived = [name for name in runtime.feeds if name not in self.replays]
        # Each day polls these in this order: the feed and its symbols, looked up once.
        self._polled = [(name, runtime.feeds[name], runtime.feed_symbols[name]) for name in self.replays + self.derived]
        composites = [feed for feed in map(runtime.feeds.get, self.derived) if isinstance(feed, CompositeFeed)]
        # The served bars the composites read back: their indexes' members and the indexes themselves.
        read_back = {m for feed in composites for index in feed.settings.indexes.values() for m in index.members}
        read_back.update(s for feed in composites for s in runtime.feed_symbols[feed.name])
        self._read_back = frozenset(read_back)
        self.served = ServedBars(runtime.store, read_back)
        for feed in composites:
            feed.bars = self.served
        # A replay prints to the console alone: once its reader is gone, replaying on would be for nobody.
        channels = list(runtime.notifiers.values())
        self._only_console = channels[0] if len(channels) == 1 and isinstance(channels[0], ConsoleNotifier) else None

    @property
    def output_closed(self) -> bool:
        """Say whether the console, the replay's only channel, lost its reader (`riskon replay | head`)."""
        return self._only_console is not None and self._only_console.closed

    def stop(self) -> None:
        """Ask the loop to stop after the batch in progress."""
        self.stopped.set()

    def _exhausted(self) -> bool:
        for feed in self._replay_feeds:  # asked before every day: a plain loop, no generator
            if not feed.exhausted:
                return False
        return True

    async def run(self) -> None:
        """Step batches of days until every replay feed is exhausted or a stop is asked, then drain the outbox."""
        # Everything built so far (modules, config, the replayed history) lives as long as the replay and is tens
        # of thousands of objects: frozen meanwhile, the collector does not walk them on every full collection.
        gc.freeze()
        try:
            await self._replay()
        finally:
            gc.unfreeze()

    async def _replay(self) -> None:
        """Poll each day's feeds, ingest the polls a batch at a time and deliver after each alerting poll."""
        runtime = self.runtime
        latest = {symbol: runtime.engine_last_bar(symbol) for symbols in runtime.feed_symbols.values()
                  for symbol in symbols}
        while not self.stopped.is_set() and not self._exhausted():
            polls: list[tuple[str, FeedResult, datetime]] = []
            for _ in range(self.batch_days):
                if self._exhausted():
                    break
                for name, feed, symbols in self._polled:
                    now = runtime.now()
                    try:
                        # `latest` holds every symbol's newest bar: a feed reads its own symbols' (and keeps none).
                        result = await feed.fetch(symbols, latest, now)
                    except Exception as exc:  # as in a live poll: recorded and logged, the replay goes on
                        runtime.feed_failed(name, now, exc)
                        result = FeedResult()
                    self._remember(result, latest)
                    polls.append((name, result, now))
            while polls:
                try:
                    report = await runtime.ingest_polls(polls, until_alert=self.deliver_each_poll)
                except Exception as exc:
                    self.failure = f"{type(exc).__name__}: {exc}"
                    if isinstance(exc, STORE_ERRORS):  # the database's refusal, not a bug: one line says it
                        log.error("replay: a batch of %d polls failed: %s", len(polls), self.failure)
                    else:
                        log.exception("replay: a batch of %d polls failed", len(polls))
                    self.stop()
                    return
                taken, polls = polls[:report.cycles], polls[report.cycles:]
                # Committed: each alerting poll's alerts go out on their own, oldest first, after the feeds' health
                # as the polls up to it left it; so they reach a chat as that poll's own message(s), and the log
                # reads as in a live run.
                done = 0
                for cycles, alerts in report.alerting_cycles:
                    runtime.polls_ok(taken[done:cycles])
                    if not self.output_closed:  # else the alerts stay pending for the next replay on this database
                        await runtime.deliver(up_to_alert=report.alerts[alerts - 1][0])
                    done = cycles
                runtime.polls_ok(taken[done:])
                runtime.record_polls_ok(taken)
            if self.output_closed:
                self.stop()
                break
            if self.seconds_per_day:
                await asyncio.sleep(self.seconds_per_day)
            else:
                await asyncio.sleep(0)  # let chat commands and the health endpoint answer between batches
        if self._exhausted() and not self.output_closed:
            await self._drain()
            self.finished_replay = True

    def _remember(self, result: FeedResult, latest: dict[str, datetime | None]) -> None:
        """Remember what a poll served, as `Runtime.poll` would find it stored: the final bars and the newest."""
        served, read_back = self.served, self._read_back
        for symbol, bars in result.bars.items():
            # A replay serves final bars only: the list is filtered only when its last bar is still forming.
            finals = bars if bars and bars[-1].final else [b for b in bars if b.final]
            if finals:
                if symbol in read_back:
                    served.add(symbol, finals)  # takes the final bars alone
                newest = latest.get(symbol)
                if newest is None or finals[-1].time > newest:
                    latest[symbol] = finals[-1].time

    async def _drain(self) -> None:
        for _ in range(FINAL_DRAIN_ROUNDS):
            report = await self.runtime.deliver()
            if not report.outcomes:
                break
