"""What the Store reads back, as frozen rows with names (never dicts or bare tuples)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from alerts.events import AlertEvent


@dataclass(frozen=True)
class RecordedAlert:
    """An alert as recorded: the event, its text, and when it fired (silent: history, never sent)."""

    id: int
    dedup_key: str
    rule_id: str
    kind: str
    symbol: str
    bar_time: datetime
    values: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""
    fired_at: datetime | None = None

    def event(self) -> AlertEvent:
        """Return the event this alert was recorded for."""
        return AlertEvent(self.rule_id, self.kind, self.symbol, self.bar_time, dict(self.values))


@dataclass(frozen=True)
class Mute:
    """A chat's silence until a time, for everything or one rule (or kind) and/or one symbol."""

    rule_id: str | None
    symbol: str | None
    until: datetime


@dataclass(frozen=True)
class FeedPolls:
    """How a feed's polls went, as stored: the last good one, the last error, failures in a row."""

    feed: str
    last_ok_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str = ""
    failures: int = 0
