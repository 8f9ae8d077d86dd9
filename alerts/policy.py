"""The notify policy: whether a rule's event is sent, and why — pure, with the reason spelled out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Hashable, Literal, Sequence, TypeVar

from alerts.events import AlertEvent

Frequency = Literal["once", "once_per_bar", "every_time"]

# Why an event was sent or not (Alertmanager's needsUpdate lesson: the decision names its reason).
FIRST = "first"                      # no earlier alert of this rule on this symbol
NEW_EVENT = "new event"              # a new event, and nothing configured to throttle it
COOLDOWN_ELAPSED = "cooldown elapsed"  # the cooldown since the last alert is over
EVERY_TIME = "every time"            # frequency every_time: each new event goes out
SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class NotifyPolicy:
    """How often one rule may alert per symbol."""

    # once: each new event once; a cooldown throttles. once_per_bar: also at most one per bar.
    # every_time: every new event, the cooldown ignored. A duplicate is never sent. Re-arming (a new alert
    # only after price moved on) is each rule's own parameter (`rearm_pct`), decided inside the rule.
    frequency: Frequency = "once"
    cooldown: timedelta = timedelta(0)


@dataclass(frozen=True)
class LastAlert:
    """The last alert of a rule on a symbol that the policy let through."""

    dedup_key: str
    bar_time: datetime
    price: float | None = None

    @classmethod
    def of(cls, event: AlertEvent) -> LastAlert:
        """Remember an event that was let through."""
        return cls(event.dedup_key, event.bar_time, event_price(event))


@dataclass(frozen=True)
class Decision:
    """Whether to send an event, the reason, and the figures behind it."""

    notify: bool
    reason: str
    detail: str = ""


def event_price(event: AlertEvent) -> float | None:
    """Return the price an event reports, if any."""
    price = event.values.get("price")
    return float(price) if isinstance(price, (int, float)) and not isinstance(price, bool) else None


def holds_back(policy: NotifyPolicy) -> bool:
    """Say whether the policy can hold back an event never recorded before (else `decide` always sends it)."""
    return policy.frequency == "once_per_bar" or (policy.frequency == "once" and bool(policy.cooldown))


def decide(policy: NotifyPolicy, event: AlertEvent, last: LastAlert | None) -> Decision:
    """Decide whether an event is sent, given the last alert let through for its rule and symbol.

    Time is measured between bar times, not wall clocks, so a replay, a backtest and a live run that
    restarts midway all decide alike.
    """
    if last is None:
        return Decision(True, FIRST)
    if event.dedup_key == last.dedup_key:
        return Decision(False, SUPPRESSED, "already alerted")
    if policy.frequency == "every_time":
        return Decision(True, EVERY_TIME)
    if policy.frequency == "once_per_bar" and event.bar_time == last.bar_time:
        return Decision(False, SUPPRESSED, f"already alerted on the bar of {last.bar_time:%Y-%m-%d %H:%M}")
    since = event.bar_time - last.bar_time
    if policy.cooldown and since < policy.cooldown:
        left = policy.cooldown - since
        return Decision(False, SUPPRESSED, f"cooldown: {_duration(left)} left of {_duration(policy.cooldown)}")
    if policy.cooldown:
        return Decision(True, COOLDOWN_ELAPSED, f"{_duration(since)} since the last alert")
    return Decision(True, NEW_EVENT)


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds >= 86400:
        return f"{seconds / 86400:.3g}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.3g}h"
    return f"{max(seconds, 0) / 60:.0f}m"


def policy_from(frequency: str = "once", cooldown: timedelta | None = None) -> NotifyPolicy:
    """Build a rule's policy from its config (frequency and cooldown)."""
    return NotifyPolicy(
        frequency=frequency if frequency in ("once", "once_per_bar", "every_time") else "once",  # type: ignore[arg-type]
        cooldown=cooldown or timedelta(0),
    )


T = TypeVar("T")


def group_alerts(
    items: Sequence[T],
    chat_of: Callable[[T], Hashable],
    cycle_of: Callable[[T], Hashable],
    text_of: Callable[[T], str],
    max_chars: int = 3500,
    max_alerts: int = 10,
) -> list[list[T]]:
    """Group alerts for one message each: same chat, same cycle, in order, within a message's size.

    Telegram refuses texts over 4096 characters, so a big cycle splits into several messages rather
    than losing any alert; order within each chat is kept.
    """
    groups: list[list[T]] = []
    open_group: dict[Hashable, tuple[Hashable, list[T], int]] = {}
    for item in items:
        chat, cycle, size = chat_of(item), cycle_of(item), len(text_of(item)) + 2
        current = open_group.get(chat)
        if current and current[0] == cycle and len(current[1]) < max_alerts and current[2] + size <= max_chars:
            current[1].append(item)
            open_group[chat] = (cycle, current[1], current[2] + size)
        else:
            group = [item]
            groups.append(group)
            open_group[chat] = (cycle, group, size)
    return groups


def merged_text(texts: Sequence[str]) -> str:
    """Join several alerts' texts into one message."""
    if len(texts) == 1:
        return texts[0]
    return f"{len(texts)} alerts\n\n" + "\n\n".join(texts)


__all__ = [
    "COOLDOWN_ELAPSED", "EVERY_TIME", "FIRST", "NEW_EVENT", "SUPPRESSED", "Decision", "LastAlert",
    "NotifyPolicy", "decide", "event_price", "group_alerts", "merged_text", "policy_from",
]

