"""What every rule is: a kind, a parameter model, and a pure step from one bar to events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, ClassVar, Generic, Mapping, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict

from alerts.bars import Bar
from alerts.events import AlertEvent


class RuleParams(BaseModel):
    """Base of every rule's parameters: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class RuleContext:
    """What a rule may read besides its own state and the new bar."""

    # The last `rule.lookback` final bars of the symbol before the new bar, oldest first.
    recent: Sequence[Bar] = ()
    # Set when the history seen for this symbol is known to start late (truncated source):
    # a high over it is "the highest since" this date, never "all-time".
    truncated_since: datetime | None = None
    # Events other rules fired on this bar time earlier in the same evaluation cycle.
    cycle_events: Sequence[AlertEvent] = ()
    # Events fired in earlier cycles (and before a restart), oldest first, a bounded number: cross-asset
    # rules need them because a leader's bar and a follower's bar often arrive in different polls.
    recent_events: Sequence[AlertEvent] = ()
    # Recent final bars of any other symbol (for cross-asset rules); empty when unknown.
    bars_of: Callable[[str], Sequence[Bar]] = field(default=lambda symbol: ())
    # Daily net flows (USD) of the symbol's fund, oldest first, as (time, flow_usd); empty when none.
    flows: Sequence[tuple[datetime, float]] = ()
    # The fund's total net assets in USD, when the flows source knows them (for outflows as % of assets).
    assets_usd: float | None = None


# What stepping a rule over one bar gives: its new state and the events it fired, as a pair. A pair, not a class:
# it is built on every bar of every rule, and calling a class's __init__ costs several times building a tuple.
RuleStep = tuple[Mapping[str, Any], tuple[AlertEvent, ...]]


P = TypeVar("P", bound=RuleParams)


class Rule(Generic[P]):
    """Base class of rule kinds; subclasses set `kind`, `Params` and implement `step`.

    Generic over its parameters (`class NewAllTimeHigh(Rule[NewAllTimeHighParams])`), so `self.params.by`
    is checked by mypy.
    """

    kind: ClassVar[str]
    Params: ClassVar[type[RuleParams]]
    # Does the rule look at a bar that is still forming? Most decide on closed bars only.
    reads_forming_bars: bool = False
    # Does the rule read `RuleContext.flows`? A rule that never does says False: the engine then skips
    # loading them for its symbols (the safe default: a rule that forgets to say still gets its flows).
    reads_flows: bool = True

    def __init__(self, rule_id: str, params: P) -> None:
        self.rule_id = rule_id
        self.params = params

    @property
    def lookback(self) -> int:
        """Return how many earlier bars the rule needs in `RuleContext.recent`."""
        return 0

    def step(self, state: Mapping[str, Any] | None, symbol: str, bar: Bar, ctx: RuleContext) -> RuleStep:
        """Advance the rule by one bar: return (new state, events); never mutate `state`."""
        raise NotImplementedError

    def describe(self, symbols: Sequence[str]) -> str:
        """Say in words what this rule watches."""
        return f"{self.kind} on {', '.join(symbols)}"
