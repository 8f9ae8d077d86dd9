"""What `run`, `replay` and a rehearsal share: the serving loop and the replay config."""

from __future__ import annotations

import asyncio
import importlib
import signal
from datetime import date
from typing import TYPE_CHECKING, Protocol

from bot.config import Config, FeedConfig
from bot.config.secrets import secrets_of

if TYPE_CHECKING:  # the runtime, feeds and store load when a command runs, not with --help
    from bot.feeds.base import Feed
    from bot.runtime import Runtime
    from storage import Store


class Steps(Protocol):
    """What serve() drives: the live scheduler, a replay loop or a rehearsal."""

    def stop(self) -> None:
        """Ask it to stop after the step in hand."""
        ...

    async def run(self) -> None:
        """Run until stopped."""
        ...


async def serve(runtime: Runtime, scheduler: Steps) -> None:
    """Run the scheduler until a signal or the end of a replay; start and stop notifiers and the health endpoint."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        runtime.dispatcher.stop_sending()  # the sends in flight finish; the others wait for the next start
        scheduler.stop()

    # SIGHUP too: the terminal `riskon run` was started from closed. Its default action killed the bot mid-send,
    # leaving sends in flight unrecorded (a restart would send them again).
    hangup = getattr(signal, "SIGHUP", None)  # not on Windows
    for signum in (signal.SIGINT, signal.SIGTERM, *([hangup] if hangup is not None else [])):
        try:
            loop.add_signal_handler(signum, stop)
        except (NotImplementedError, RuntimeError):  # not on the main thread (tests) or not on this OS
            pass
    await runtime.start()
    health = None
    if runtime.config.health.enabled:
        # aiohttp and prometheus take most of a second to import: on a worker thread, so the chats are
        # answered meanwhile (the bot listens from runtime.start() on).
        await asyncio.to_thread(importlib.import_module, "bot.health")
        from bot.health import start_health

        health = await start_health(runtime, secrets_of(runtime.config))
    try:
        await scheduler.run()
    finally:
        if health is not None:
            await health.stop()
        await runtime.close()


def replay_config(config: Config, data: str, start: date | None, end: date | None,
                  keep_channels: bool = False) -> Config:
    """Return the config with every non-composite symbol served by one replay feed over `data`."""
    feeds = {"replay": FeedConfig.model_validate({
        "kind": "replay", "every_seconds": 1, "path": data,
        "start": start.isoformat() if start else None, "end": end.isoformat() if end else None})}
    symbols = []
    for symbol in config.symbols:
        feed = config.feeds.get(symbol.feed)
        if feed is not None and feed.kind == "composite":
            feeds[symbol.feed] = feed
            symbols.append(symbol.model_copy(update={"history_feed": None}))
        else:
            symbols.append(symbol.model_copy(update={"feed": "replay", "history_feed": None}))
    if keep_channels:  # a rehearsal: its alerts go to the configured chats, each marked as a rehearsal
        return config.model_copy(update={"feeds": feeds, "symbols": symbols})
    # Alerts from history go to the console only: a replay must never message real chats.
    return config.model_copy(update={"feeds": feeds, "symbols": symbols, "channels": {"console": {"enabled": True}}})


def other_feeds(config: Config, store: Store) -> dict[str, Feed]:
    """Build every configured feed except the replay one (composites computed from the replayed bars)."""
    from bot.feeds import build_feed

    return {name: build_feed(name, feed.kind, feed.settings, [s for s in config.symbols if s.feed == name], store)
            for name, feed in config.feeds.items() if name != "replay"}
