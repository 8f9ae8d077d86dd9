"""`riskon run --rehearse DIR`: real history replayed as if live, alerts to the configured chats marked as a rehearsal.

The rehearsal keeps its own database beside the live one (started afresh each time, with the live database's
subscriptions copied in), so neither ever sees the other's alerts; commands answer with the replayed market; and
the bot keeps answering them after the last replayed day, until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alerts.errors import RiskonError
from bot.config import Config
from bot.notifiers.base import ChatTarget, OutgoingAlert, SendOutcome
from storage import Store

if TYPE_CHECKING:  # the runtime loads when a rehearsal runs
    from bot.runtime import Runtime

log = logging.getLogger("riskon")

DEFAULT_DAYS = 90  # without --from: the last three months of the data are news, the rest warms the rules up


def rehearsal_text(alert: OutgoingAlert) -> str:
    """Mark an alert's text as a rehearsal: on its headline (a Discord title, Telegram's bold line) and at its end."""
    first, _, rest = alert.text.partition("\n")
    days = sorted({event.bar_time.date() for event in alert.events})
    when = f"the history of {days[-1]:%Y-%m-%d}" if days else "history"
    body = f"{rest}\n" if rest else ""
    return f"🎭 REHEARSAL · {first}\n{body}Rehearsal on {when}: replayed, not a live signal."


class RehearsalNotifier:
    """Wrap a channel's notifier so that every alert it sends says it is a rehearsal."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)  # health and commands read the real notifier's state

    async def start(self, listen: bool = True) -> None:
        """Start the wrapped notifier."""
        await self.inner.start(listen)

    async def stop(self) -> None:
        """Stop the wrapped notifier."""
        await self.inner.stop()

    async def send(self, chat: ChatTarget, alert: OutgoingAlert) -> SendOutcome:
        """Send the alert, marked as a rehearsal (each grouped alert too: Discord shows them as separate embeds)."""
        texts = tuple(rehearsal_text(dataclasses.replace(alert, events=(event,), text=text))
                      for event, text in zip(alert.events, alert.texts))
        marked = dataclasses.replace(alert, text=rehearsal_text(alert), texts=texts)
        result: SendOutcome = await self.inner.send(chat, marked)
        return result


def rehearsal_database(config: Config) -> Path:
    """Return where a rehearsal keeps its database: beside the live one, never the same file."""
    live = Path(config.storage.path)
    return live.with_name(f"{live.stem}.rehearsal{live.suffix or '.db'}")


def open_rehearsal_store(config: Config) -> Store:
    """Start the rehearsal's database afresh, with the live database's active subscriptions copied in."""
    path = rehearsal_database(config)
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)  # a second rehearsal sends its alerts again
    store = Store.open(path, durable=False)
    live_path = Path(config.storage.path)
    if live_path.exists():
        live = Store.open(live_path)
        try:
            subscriptions = live.active_subscriptions()
        finally:
            live.close()
        for sub in subscriptions:
            store.subscribe(sub.channel, sub.chat_id, sub.thread_id, sub.rules, sub.symbols)
        log.info("rehearsal: database %s, with the %d subscription(s) of %s", path, len(subscriptions), live_path)
    return store


def default_start(data: str, config: Config) -> date:
    """Return the first day of news when --from is not given: DEFAULT_DAYS before the data's last day."""
    from bot.feeds.replay import ReplayFeed, ReplaySettings

    feed = ReplayFeed("replay", ReplaySettings(path=data), config.symbols)
    feed.load()
    if not feed.day_count:
        raise RiskonError(f"--rehearse {data}: no CSV file matches a configured symbol")
    return feed.days[-1].date() - timedelta(days=DEFAULT_DAYS)


def wrap_notifiers(runtime: Runtime) -> None:
    """Mark every alert the runtime sends as a rehearsal (the dispatcher shares the runtime's notifier map)."""
    for name, notifier in list(runtime.notifiers.items()):
        runtime.notifiers[name] = RehearsalNotifier(notifier)


class Rehearsal:
    """Drive a rehearsal: the replay loop to the data's end, delivery ticking beside it, then commands until stopped."""

    def __init__(self, runtime: Runtime, seconds_per_day: float) -> None:
        from bot.replay_loop import ReplayLoop

        self.runtime = runtime
        # Its chats are real: each alerting day is committed and delivered before the next is ingested.
        self.replay = ReplayLoop(runtime, seconds_per_day=seconds_per_day, deliver_each_poll=True)
        self.stopped = asyncio.Event()

    def stop(self) -> None:
        """Stop the replay after its batch in hand, and the rehearsal with it."""
        self.stopped.set()
        self.replay.stop()

    async def run(self) -> None:
        """Replay to the end, then keep delivering (retries) and answering commands until stopped."""
        ticker = asyncio.create_task(self._deliver_every(self.runtime.config.schedule.deliver_every_seconds))
        try:
            await self.replay.run()
            if self.replay.finished_replay:
                last = self.runtime.now() - timedelta(days=1)
                log.info("rehearsal finished: the last replayed day was %s; still answering commands until stopped "
                         "(Ctrl-C)", f"{last:%Y-%m-%d}")
            await self.stopped.wait()
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _deliver_every(self, seconds: float) -> None:
        # The replay delivers right after each alerting day; this picks up retries (a rate-limited chat) meanwhile.
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.runtime.deliver()
            except Exception:
                log.exception("rehearsal: delivery failed unexpectedly")


def rehearse(config: Config, data: str, start: date | None, seconds_per_day: float) -> None:
    """Replay `data` as if live through every configured channel until stopped."""
    from bot.feeds.replay import ReplayFeed, ReplaySettings
    from bot.runtime import Runtime
    from bot.serving import other_feeds, replay_config, serve

    if not Path(data).is_dir():
        raise RiskonError(f"--rehearse {data}: no such folder")
    start = start or default_start(data, config)
    rehearsed = replay_config(config, data, start, None, keep_channels=True)
    store = open_rehearsal_store(config)

    async def main() -> None:
        replay = ReplayFeed("replay", ReplaySettings(**rehearsed.feeds["replay"].settings),
                            [s for s in rehearsed.symbols if s.feed == "replay"])
        problem = replay.span_problem(start, None)
        if problem:
            raise RiskonError(f"--rehearse {data}: {problem}")
        runtime = Runtime(rehearsed, store, clock=replay.clock, live_since=replay.live_since(),
                          feeds={"replay": replay, **other_feeds(rehearsed, store)})
        wrap_notifiers(runtime)
        log.info("rehearsal: replaying %s from %s at %s; alerts go to the configured chats, marked as a rehearsal",
                 data, start, "full speed" if not seconds_per_day else f"{1 / seconds_per_day:g} market day(s)/s")
        await serve(runtime, Rehearsal(runtime, seconds_per_day))

    try:
        asyncio.run(main())
    finally:
        store.close()
