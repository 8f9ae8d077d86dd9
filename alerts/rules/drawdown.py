"""drawdown: the close has fallen more than x % below the all-time high."""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import Field, field_validator

from alerts.bars import Bar
from alerts.events import AlertEvent
from alerts.rules.base import Rule, RuleContext, RuleParams, RuleStep
from alerts.rules.common import ROUNDING_MARGIN, WARM_BEFORE, iso, parse_time, pct_change


class DrawdownParams(RuleParams):
    """Parameters of the drawdown rule."""

    thresholds_pct: list[float] = Field(
        default_factory=lambda: [20.0],
        description="alert once per decline at each of these drawdowns from the all-time closing high, in %",
    )

    @field_validator("thresholds_pct")
    @classmethod
    def _validate_thresholds(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("give at least one drawdown threshold")
        for threshold in value:
            if not 0 < threshold < 100:
                raise ValueError(f"threshold {threshold} must be between 0 and 100 (a percent below the high)")
        return sorted(set(value))

    min_history_days: int = Field(
        365, ge=0, le=36500,
        description="days of history before a drawdown is news: until then the high is tracked and thresholds "
        "crossed are noted silently",
    )


class Drawdown(Rule[DrawdownParams]):
    """Alert when the close first falls a threshold below the all-time high; a new high starts a new decline."""

    kind = "drawdown"
    Params = DrawdownParams
    reads_flows = False

    def __init__(self, rule_id: str, params: DrawdownParams) -> None:
        super().__init__(rule_id, params)
        self._shallowest = min(params.thresholds_pct, default=float("inf"))

    def step(self, state: Mapping[str, Any] | None, symbol: str, bar: Bar, ctx: RuleContext) -> RuleStep:
        """Track the high and alert on the deepest threshold newly crossed."""
        p = self.params
        if state is None or state.get("ath") is None:
            return {"ath": bar.close, "ath_time": iso(bar.time), "alerted": [], "first_time": iso(bar.time)}, ()
        # A state saved before warm-up was tracked has seen its history already: it counts as warmed up.
        first_time = state.get("first_time") or WARM_BEFORE
        ath = float(state["ath"])
        if bar.close > ath:
            return {"ath": bar.close, "ath_time": iso(bar.time), "alerted": [], "first_time": first_time}, ()
        alerted = state.get("alerted", [])
        crossed: list[float] = []
        depth = 0.0
        # Most bars are above the shallowest threshold by more than rounding can move them: no threshold to look
        # at, and no rounded depth to work out.
        if (bar.close / ath - 1.0) * 100.0 + self._shallowest <= ROUNDING_MARGIN:
            depth = -pct_change(ath, bar.close)
            if depth >= self._shallowest:
                crossed = [t for t in p.thresholds_pct if depth >= t and t not in alerted]
        if not crossed and first_time is state.get("first_time") and len(state) == 4:
            return state, ()  # nothing new below the high: the state as it was (never changed in place)
        new_state = {"ath": ath, "ath_time": state["ath_time"], "alerted": sorted([*alerted, *crossed]),
                     "first_time": first_time}
        # While warming up, a crossed threshold is noted silently: the same decline is not news a year later.
        if not crossed or (bar.time - parse_time(first_time)).days < p.min_history_days:
            return new_state, ()
        values = {
            "price": bar.close, "direction": "down", "drawdown_pct": depth, "threshold_pct": max(crossed),
            "ath": ath, "ath_time": state["ath_time"][:10], "all_time": ctx.truncated_since is None,
            "since": ctx.truncated_since.date().isoformat() if ctx.truncated_since else None,
        }
        event = AlertEvent(self.rule_id, self.kind, symbol, bar.time, values, f"{max(crossed):g}")
        return new_state, (event,)

    def describe(self, symbols) -> str:
        """Say in words what this rule watches."""
        p = self.params
        steps = ", ".join(f"{t:g}%" for t in p.thresholds_pct)
        return f"Drawdown: {', '.join(symbols)} closing {steps} below the all-time high"
