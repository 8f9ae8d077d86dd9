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
        stamp = self.bar_time.strftime("%Y-%m-%dT%H:%MZ")
        key = f"{self.rule_id}|{self.symbol}|{self.kind}|{stamp}"
        return f"{key}|{self.discriminator}" if self.discriminator else key
