"""The runtime: builds feeds, engine, notifiers and dispatcher from config, and runs one poll or drain at a time."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, Sequence, TextIO, TypeVar

from alerts.bars import Bar
from alerts.events import AlertEvent
from bot.backoff import backoff_seconds
from bot.charts import AlertCharts
from bot.config import Config, load_config
from bot.delivery import STORE_ERRORS, Dispatcher, DrainReport
from bot.engine import INGEST_CHUNK_BARS, Engine, IngestReport, chunks_by_time
from bot.feeds import Feed, FeedResult, build_feed
from bot.feeds.base import WritesStore
from bot.notifiers import NOTIFIERS, Notifier
from bot.notifiers.console import CONSOLE_CHAT
from storage import Store
from storage.thread import DatabaseThread

if TYPE_CHECKING:
    from bot.commands.specs import CommandRateLimit

log = logging.getLogger(__name__)
T = TypeVar("T")
RESTART_ONLY = ("storage", "schedule", "feeds", "symbols", "channels", "health")  # what /reload cannot apply

@dataclass
class FeedHealth:
    """How a feed is doing: last success, consecutive failures, when it may be polled again."""

    last_ok: datetime | None = None
    last_error: str = ""
    failures: int = 0
    next_try: datetime | None = None
    symbol_errors: dict[str, str] = field(default_factory=dict)
    polls: int = 0  # since start, for /metrics
    failed_polls: int = 0


def system_clock() -> datetime:
    """Return the current UTC time."""
    return datetime.now(timezone.utc)


class Runtime:
    """Everything a running riskon holds; chat commands read it, the scheduler drives it."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Callable[[], datetime] = system_clock,
        console_stream: TextIO | None = None,
        feeds: dict[str, Feed] | None = None,
        live_since: datetime | None = None,
        database_thread: bool = False,
    ) -> None:
        self.config = config
        self.store = store  # the loop's connection: chat commands and health read through it
        # The poll and delivery paths write through one database thread (with database_thread and a file),
        # so a locked or full database never stalls the loop; in memory they run inline.
        self.database = DatabaseThread(store, threaded=database_thread)
        self.clock = clock
        self.console_stream = console_stream
        self.started_at = clock()
        self.live_since = live_since or self.started_at
        self.feeds = feeds if feeds is not None else self._build_feeds()
        for feed in self.feeds.values():
            if isinstance(feed, WritesStore):  # flows and fragility write too: where every other write goes
                feed.use_database(self.database)
        self.feed_symbols = {name: [s.id for s in config.symbols if s.feed == name] for name in self.feeds}
        self.health = {name: FeedHealth() for name in self.feeds}
        writer = self.database.store
        self.engine = Engine(writer, config.bindings(), [s.id for s in config.symbols], flows_of=writer.current_flows,
                             note_for=self._alert_note)
        self.notifiers = self._build_notifiers()
        self.charts = AlertCharts(store)  # one chart per alert, shared by every chat it goes to
        self.dispatcher = Dispatcher(
            store, self.notifiers, clock,
            config.schedule.retry_base_seconds, config.schedule.retry_max_seconds, config.schedule.max_attempts,
            chart_for=self.charts.for_delivery, group_cycles=config.schedule.group_alerts, database=self.database,
        )
        self.rng = random.Random()
        self._store_trouble = ""  # the database error polls last met, logged once per change
        self._database_file_problem: str | None = None  # the file deleted or replaced under us, logged once
        self._lock = asyncio.Lock()
        self.bars_processed = 0
        self.stop_requested = asyncio.Event()

    # --- construction -------------------------------------------------------------------------
    def _build_feeds(self) -> dict[str, Feed]:
        feeds: dict[str, Feed] = {}
        for name, feed_config in self.config.feeds.items():
            symbols = [s for s in self.config.symbols if s.feed == name or s.history_feed == name]
            feeds[name] = build_feed(name, feed_config.kind, feed_config.settings, symbols, self.store)
        return feeds

    def _build_notifiers(self) -> dict[str, Notifier]:
        """Build every configured channel; the console is the default when no chat channel is configured."""
        channels = dict(self.config.channels)
        if not any(name != "console" for name in channels) and "console" not in channels:
            channels["console"] = {"enabled": True}
        notifiers: dict[str, Notifier] = {}
        problems = []
        for name, settings in channels.items():
            kind = NOTIFIERS[name]
            parsed = kind.Settings.model_validate(settings or {})
            if getattr(parsed, "enabled", True) is False:
                continue
            try:
                notifiers[name] = kind.build(parsed, self)
            except Exception as exc:  # collect every channel's problem, report them together
                problems.append(f"channels.{name}: {exc}")
        if problems:
            from alerts.errors import RiskonError

            raise RiskonError("cannot set up channels:\n" + "\n".join(problems))
        if "console" in notifiers:
            self.store.subscribe("console", CONSOLE_CHAT.chat_id)
        return notifiers

    # --- state shared with chat commands ---------------------------------------------------------
    @cached_property
    def command_limit(self) -> CommandRateLimit:
        """Return the per-user pace of chat commands, made when the first command comes in."""
        # Imported here: the command package loads every handler, which a replay or a console-only run never calls.
        from bot.commands.specs import CommandRateLimit

        return CommandRateLimit()

    @property
    def paused(self) -> bool:
        """Say whether an admin paused alerting (persisted across restarts)."""
        return self.store.setting("paused", "0") == "1"

    async def set_paused(self, paused: bool) -> None:
        """Pause or resume alerting."""
        await self.write(lambda store: store.set_setting("paused", "1" if paused else "0"))

    async def write(self, change: Callable[[Store], T]) -> T:
        """Make a chat command's change on the database thread, as polls and deliveries do; return its result.

        A database locked by another process then holds up that command alone: the loop answers the others.
        """
        return await self.database.run(change, self.database.store)

    def now(self) -> datetime:
        """Return the runtime's clock (the replayed day in a replay)."""
        return self.clock()

    async def reload(self) -> list[str]:
        """Re-read config.yaml and rebuild the rules, keeping every stored state; return what changed."""
        if not self.config.source_path:
            return ["no config file to reload"]
        fresh = load_config(self.config.source_path)
        # Feeds, notifiers, the database and the jobs were built at start: a change there waits for a restart, and
        # the running sections stay, so /status and the rules never speak of a symbol no feed polls.
        waiting = [name for name in RESTART_ONLY if getattr(fresh, name) != getattr(self.config, name)]
        fresh = fresh.model_copy(update={name: getattr(self.config, name) for name in waiting})
        async with self._lock:
            before = {r.id for r in self.config.rules}
            self.config = fresh
            writer = self.database.store
            self.engine = Engine(writer, fresh.bindings(), [s.id for s in fresh.symbols],
                                 flows_of=writer.current_flows, note_for=self._alert_note)
            after = {r.id for r in fresh.rules}
        changes = [f"rules added: {', '.join(sorted(after - before)) or 'none'}",
                   f"rules removed: {', '.join(sorted(before - after)) or 'none'}"]
        if waiting:
            changes.append(f"changed, applied at the next restart: {', '.join(waiting)} (the running ones stay)")
        return changes

    def channel_retries(self) -> dict[str, int]:
        """Return, per channel, how many sends in a row had to be retried."""
        return self.dispatcher.retries_in_a_row

    async def wait_idle(self, timeout: float) -> bool:
        """Wait (bounded) for a poll and a drain in progress to finish; say whether both did in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            await asyncio.wait_for(self._lock.acquire(), timeout)
        except TimeoutError:
            return False
        self._lock.release()
        return await self.dispatcher.wait_idle(max(0.1, deadline - loop.time()))

    def _alert_note(self, event: AlertEvent) -> str | None:
        """Return the context line an alert carries (the fragility of a small-cap rally), if any."""
        from bot.fragility_report import alert_note

        return alert_note(self.database.store, self.config, event)  # called by the engine, on its thread

    # --- the two jobs -------------------------------------------------------------------------
    async def poll(self, feed_name: str) -> IngestReport | None:
        """Poll one feed, store its new bars and record the alerts they fire; never raise for a source error."""
        feed = self.feeds[feed_name]
        health = self.health[feed_name]
        now = self.clock()
        if health.next_try is not None and now < health.next_try:
            return None
        symbols = self.feed_symbols[feed_name]
        try:
            since = await self.database.run(self._last_bars, symbols)
            if any(since[s] is None for s in symbols):
                await self._backfill_from_history_feeds([s for s in symbols if since[s] is None], now)
                since = await self.database.run(self._last_bars, symbols)
        except STORE_ERRORS as exc:
            self._store_failed(f"cannot read what feed {feed_name} last stored; polls go on and retry", exc)
            return None
        try:
            result = await feed.fetch(symbols, since, now)
        except Exception as exc:  # one failing source never stops the others
            self._feed_failed(feed_name, health, now, exc)
            return None
        try:
            async with self._lock:
                for symbol, started in result.truncated_since.items():
                    self.engine.truncated_since[symbol] = started
                # Paused: keep the data current, but record nothing as news.
                live_since = datetime.max.replace(tzinfo=timezone.utc) if self.paused else self.live_since
                report = await self._ingest(result.bars, now, live_since)
        except STORE_ERRORS as exc:
            # Nothing of this poll was kept (one transaction): the next poll fetches the same bars again.
            self._store_failed(f"cannot store what feed {feed_name} returned; polls go on and retry", exc)
            return None
        self._store_ok()
        self.bars_processed += report.bars
        self._feed_ok(feed_name, health, now, result.errors)
        return report

    async def ingest_polls(self, polls: Sequence[tuple[str, FeedResult, datetime]], until_alert: bool = False,
                           ) -> IngestReport:
        """Record several polls' results, in order, in one transaction, as separate polls would (a replay's days);
        with until_alert, stop after the first poll that records an alert (`report.cycles` polls taken). The
        caller counts the feeds' health (`polls_ok`): between deliveries, to log it as separate polls would."""
        if not polls:
            return IngestReport()
        def cycles() -> Iterator[tuple[Mapping[str, Sequence[Bar]], datetime]]:
            # Taken one by one as the engine gets to them: with until_alert it may stop after a few of many.
            for _, result, now in polls:
                self.engine.truncated_since.update(result.truncated_since)
                yield result.bars, now

        async with self._lock:
            # Paused: keep the data current, but record nothing as news.
            live_since = datetime.max.replace(tzinfo=timezone.utc) if self.paused else self.live_since
            report = await self.database.run(self.engine.ingest_cycles, cycles(), live_since, until_alert)
        self.bars_processed += report.bars
        return report

    def polls_ok(self, polls: Sequence[tuple[str, FeedResult, datetime]]) -> None:
        """Count ingested polls in their feeds' health, as each feed's last poll among them left it."""
        for name, (result, now, count) in _last_polls(polls).items():
            health = self.health[name]
            health.polls += count - 1  # _feed_ok counts the last one
            self._feed_ok(name, health, now, result.errors, record=False)

    def record_polls_ok(self, polls: Sequence[tuple[str, FeedResult, datetime]]) -> None:
        """Persist each feed's last good poll among `polls` (one write, which nothing waits for)."""
        self._record_polls([(name, now, None) for name, (_, now, _) in _last_polls(polls).items()])

    def feed_failed(self, name: str, now: datetime, exc: Exception) -> None:
        """Record a failed poll of a feed (logged once per back-off step)."""
        self._feed_failed(name, self.health[name], now, exc)

    async def _backfill_from_history_feeds(self, symbols: list[str], now: datetime) -> None:
        """Fill empty symbols from their `history_feed` (a longer history than the live feed serves)."""
        by_feed: dict[str, list[str]] = {}
        for symbol in symbols:
            config = self.config.symbol(symbol)
            if config is not None and config.history_feed and config.history_feed in self.feeds:
                by_feed.setdefault(config.history_feed, []).append(symbol)
        for name, wanted in by_feed.items():
            try:
                result = await self.feeds[name].fetch(wanted, {s: None for s in wanted}, now)
            except Exception as exc:  # the live feed's own (possibly shorter) history is the fallback
                log.warning("history from feed %s failed for %s: %s", name, ", ".join(wanted), exc)
                continue
            for symbol, error in result.errors.items():
                log.warning("history from feed %s for %s: %s", name, symbol, error)
            finals = {s: [b for b in bars if b.final] for s, bars in result.bars.items() if s in wanted}
            try:
                async with self._lock:
                    await self._ingest(finals, now, self.live_since)
            except STORE_ERRORS as exc:
                self._store_failed(f"cannot store the history from feed {name}; the next poll tries again", exc)

    async def _ingest(self, bars: Mapping[str, Sequence[Bar]], now: datetime, live_since: datetime) -> IngestReport:
        """Ingest bars on the database thread a few thousand at a time (years of history at start or backfill),
        one transaction each, yielding to chat commands in between."""
        total = IngestReport()
        for chunk in await self.database.run(chunks_by_time, bars, INGEST_CHUNK_BARS):
            report = await self.database.run(self.engine.ingest, chunk, now, live_since)
            total.bars += report.bars
            total.alerts += report.alerts
            total.silent += report.silent
            total.duplicates += report.duplicates
            total.suppressed += report.suppressed
            await asyncio.sleep(0)  # in memory the work runs inline: let a waiting command in
        return total

    def _last_bars(self, symbols: Sequence[str]) -> dict[str, datetime | None]:
        return {symbol: self.engine_last_bar(symbol) for symbol in symbols}

    def engine_last_bar(self, symbol: str) -> datetime | None:
        """Return the newest bar held for a symbol."""
        window = self.engine.window(symbol)
        return window[-1].time if window else None

    def _feed_failed(self, name: str, health: FeedHealth, now: datetime, exc: Exception) -> None:
        health.failures += 1
        health.polls += 1
        health.failed_polls += 1
        health.last_error = f"{type(exc).__name__}: {exc}"[:300]
        every = self.config.feeds[name].every_seconds if name in self.config.feeds else 60.0
        delay = backoff_seconds(health.failures, every, self.config.schedule.backoff_max_seconds, self.rng)
        health.next_try = now + timedelta(seconds=delay)
        # Logged once per backoff step, not on every tick.
        log.warning("feed %s failed (%d in a row): %s; next try in %.0f s", name, health.failures, health.last_error, delay)
        self._record_polls([(name, now, health.last_error)])

    def _feed_ok(self, name: str, health: FeedHealth, now: datetime, errors: Mapping[str, str],
                 record: bool = True) -> None:
        if health.failures:
            log.info("feed %s recovered after %d failures", name, health.failures)
        changed = {symbol: error for symbol, error in errors.items() if health.symbol_errors.get(symbol) != error}
        if changed:
            # One line per change, not one per symbol per poll: twelve symbols failing alike is one problem.
            shown = "; ".join(f"{symbol}: {error[:160]}" for symbol, error in list(changed.items())[:3])
            more = f" (and {len(changed) - 3} more)" if len(changed) > 3 else ""
            log.warning("feed %s: %d of %d symbol(s) failing: %s%s", name, len(errors),
                        len(self.feed_symbols.get(name, ())), shown, more)
        recovered = sorted(symbol for symbol in health.symbol_errors if symbol not in errors)
        if recovered:
            # Said once, when it happens: the warning above said they failed, this says they stopped failing.
            log.info("feed %s: %s recovered", name, ", ".join(recovered))
        health.symbol_errors = dict(errors)
        health.polls += 1
        health.failures, health.next_try, health.last_ok = 0, None, now
        if record:
            self._record_polls([(name, now, None)])

    def _record_polls(self, polls: Sequence[tuple[str, datetime, str | None]]) -> None:
        """Persist polls' outcomes for /status (a replay batch's feeds in one transaction); a refusal costs a line."""
        def record() -> None:
            try:
                self.database.store.record_polls(polls)
            except STORE_ERRORS as exc:
                self._store_failed("cannot record feed health", exc)

        self.database.submit(record)  # nothing waits for it: a locked database costs only this line

    def _store_failed(self, consequence: str, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if error != self._store_trouble:  # once per change of state, not once per poll
            log.warning("database: %s (%s)", consequence, error)
        self._store_trouble = error

    def _store_ok(self) -> None:
        if self._store_trouble:
            log.info("database: polls are stored again")
        self._store_trouble = ""

    async def deliver(self, wait: bool = True, up_to_alert: int | None = None) -> DrainReport:
        """Drain the outbox once, up to an alert if given (with `wait`, until its sends are done and recorded)."""
        self._check_database_file()
        return await self.dispatcher.drain(wait=wait, up_to_alert=up_to_alert)

    def _check_database_file(self) -> None:
        """Log, once per change, that the database file was deleted or replaced under the running bot."""
        problem = self.store.file_problem()  # one stat of the file: cheap at each delivery tick
        if problem != self._database_file_problem:
            if problem:
                log.error("%s", problem)
            else:
                log.info("database file %s is back", self.store.path)
            self._database_file_problem = problem

    # --- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect every notifier; one that cannot start is logged and left out, the others go on."""
        for name, notifier in list(self.notifiers.items()):
            try:
                await notifier.start()
            except Exception as exc:
                log.error("channel %s could not start: %s", name, exc)

    async def close(self) -> None:
        """Stop notifiers, close feeds, then the database."""
        for name, notifier in self.notifiers.items():
            try:
                await notifier.stop()
            except Exception as exc:
                log.warning("channel %s did not stop cleanly: %s", name, exc)
        self.charts.close()  # no channel asks for a chart any more
        for name, feed in self.feeds.items():
            try:
                await feed.close()
            except Exception as exc:
                log.warning("feed %s did not close cleanly: %s", name, exc)
        await self.dispatcher.record_held_outcomes()
        await self.database.close()


def _last_polls(polls: Sequence[tuple[str, FeedResult, datetime]]) -> dict[str, tuple[FeedResult, datetime, int]]:
    """Return each feed's last poll among `polls` (its result and clock) and how many polls it had."""
    last: dict[str, tuple[FeedResult, datetime, int]] = {}
    for name, result, now in polls:
        last[name] = (result, now, last[name][2] + 1 if name in last else 1)
    return last
