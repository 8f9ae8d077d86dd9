"""Step configured rules over bars: the one code path used live, in replay and in backtests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from alerts.bars import Bar
from alerts.events import AlertEvent
from alerts.policy import NotifyPolicy
from alerts.rules.base import Rule, RuleContext


@dataclass(frozen=True)
class RuleBinding:
    """A rule instance, the symbols it watches, and how often it may alert on each: built once from config."""

    rule: Rule[Any]
    symbols: tuple[str, ...]
    policy: NotifyPolicy = NotifyPolicy()


def step_rule(
    rule: Rule, state: Mapping[str, Any] | None, symbol: str, bar: Bar, ctx: RuleContext
) -> tuple[Mapping[str, Any] | None, tuple[AlertEvent, ...]]:
    """Step one rule over one bar; a forming bar yields events but leaves the committed state alone."""
    if not bar.final and not rule.reads_forming_bars:
        return state, ()
    stepped, events = rule.step(state, symbol, bar, ctx)
    return (stepped if bar.final else state), events
