"""The narrow views of the running bot that chat commands, notifiers and the health endpoint are handed.

A leaf module: it imports nothing of riskon at run time, so any layer may depend on it. `bot.runtime.Runtime`
satisfies every protocol here; tests may hand in anything else that does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TextIO, TypeVar

if TYPE_CHECKING:  # types only: importing these at run time would tie this leaf to the whole bot
    from bot.commands.specs import CommandRateLimit
    from bot.config import Config
    from bot.feeds.base import Feed
    from bot.runtime import FeedHealth
    from storage import Store

T = TypeVar("T")


class BotState(Protocol):
    """What every outside-facing part may read: the config, the store, and the bot's clock."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> Store: ...

    def now(self) -> datetime:
        """Return the bot's clock (the replayed day in a replay)."""
        ...


class HealthView(BotState, Protocol):
    """What a health check reads: feeds and their health, channels' retries in a row, pause and uptime."""

    @property
    def feeds(self) -> Mapping[str, Feed]: ...

    @property
    def health(self) -> Mapping[str, FeedHealth]: ...

    @property
    def paused(self) -> bool: ...

    @property
    def started_at(self) -> datetime: ...

    def channel_retries(self) -> Mapping[str, int]:
        """Return, per channel, how many sends in a row had to be retried."""
        ...


class CommandRuntime(HealthView, Protocol):
    """What a chat command may read and change in the running bot."""

    @property
    def command_limit(self) -> CommandRateLimit: ...

    async def set_paused(self, paused: bool) -> None:
        """Pause or resume alerting everywhere."""
        ...

    async def write(self, change: Callable[[Store], T]) -> T:
        """Make a change to the store off the event loop and return its result."""
        ...

    async def reload(self) -> list[str]:
        """Re-read config.yaml keeping every stored state; return what changed."""
        ...


class NotifierRuntime(CommandRuntime, Protocol):
    """What a notifier is built with: the command layer it answers for, and the console's stream."""

    @property
    def console_stream(self) -> TextIO | None: ...
