"""Alert events: what a rule says happened, with a key that makes it unique forever."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping


@dataclass(frozen=True)
class AlertEvent:
    """One thing a rule saw on one symbol at one bar."""

    rule_id: str
    kind: str  # what happened, e.g. "new_ath", "resistance_flip", "outflow_divergence"
    symbol: str
    bar_time: datetime
    values: Mapping[str, Any] = field(default_factory=dict)
    # Separates several events of one rule on one bar (e.g. two levels flipping at once).
    discriminator: str = ""

    @property
    def dedup_key(self) -> str:
        """Return the key under which this event is recorded once, ever."""
        t = self.bar_time
        # What strftime("%Y-%m-%dT%H:%MZ") writes, at a fraction of its cost (a time tuple and a C library call).
        key = f"{self.rule_id}|{self.symbol}|{self.kind}|{t.year}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}Z"
        return f"{key}|{self.discriminator}" if self.discriminator else key
