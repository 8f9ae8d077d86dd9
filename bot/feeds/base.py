"""The Feed protocol: where bars come from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Mapping, Protocol, Sequence, runtime_checkable

from alerts.bars import Bar

if TYPE_CHECKING:
    from bot.feeds.quality import StaleMark
    from storage.thread import DatabaseThread


@dataclass(frozen=True)
class FeedResult:
    """What one poll of a feed returned: bars per symbol, plus errors per symbol that failed."""

    bars: Mapping[str, Sequence[Bar]] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    # Where each symbol's history starts at this source, when the source is known to truncate it.
    truncated_since: Mapping[str, datetime] = field(default_factory=dict)

    # Written out, not generated: a replay makes two a day, and the generated one sets each field through
    # object.__setattr__ (a frozen class refuses plain assignment), twice the cost. Same fields, new empty defaults.
    def __init__(self, bars: Mapping[str, Sequence[Bar]] | None = None, errors: Mapping[str, str] | None = None,
                 truncated_since: Mapping[str, datetime] | None = None) -> None:
        fields = self.__dict__
        fields["bars"] = {} if bars is None else bars
        fields["errors"] = {} if errors is None else errors
        fields["truncated_since"] = {} if truncated_since is None else truncated_since


@runtime_checkable
class Feed(Protocol):
    """A source of bars for a set of symbols (riskon symbol ids)."""

    name: str

    async def fetch(self, symbols: Sequence[str], since: Mapping[str, datetime | None], now: datetime) -> FeedResult:
        """Return bars newer than `since[symbol]` (all history when None); the last bar may be forming."""
        ...

    async def close(self) -> None:
        """Release connections."""


@runtime_checkable
class MarksStale(Protocol):
    """A feed that says which of its symbols' data is no longer trusted as current, and why."""

    def stale(self, now: datetime) -> Mapping[str, StaleMark]:
        """Return the symbols whose data is stale, with since when and why."""
        ...


@runtime_checkable
class Replayable(Protocol):
    """A feed that serves a finite history, one day per poll, and says when it has served the last day."""

    @property
    def exhausted(self) -> bool:
        """Say whether every day has been served."""
        ...

    @property
    def day_count(self) -> int:
        """Return how many days the history holds."""
        ...


@runtime_checkable
class WritesStore(Protocol):
    """A feed that writes to the store itself (fund flows, fragility snapshots), not only through its bars."""

    def use_database(self, database: DatabaseThread) -> None:
        """Make the feed's writes on the runtime's database thread, where polls and deliveries write."""
        ...
