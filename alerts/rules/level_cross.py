"""level_cross: a close crossing a price level (up, down or either way)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Mapping

from pydantic import Field, field_validator

from alerts.bars import Bar
from alerts.events import AlertEvent
from alerts.rules.base import Rule, RuleContext, RuleParams, RuleStep
from alerts.rules.common import KeyedLevels, LevelsParam, check_levels, levels_for, pct_change


class LevelCrossParams(RuleParams):
    """Parameters of the level-cross rule."""

    levels: LevelsParam = Field(description="price levels: a list for every symbol, or a mapping symbol -> list")
    direction: Literal["up", "down", "either"] = Field("either", description="which crossings alert")
    rearm_pct: float = Field(
        0.0, ge=0, le=50,
        description="after an alert, the next one the same way needs a close this % on the other side first",
    )

    @field_validator("levels")
    @classmethod
    def _validate_levels(cls, value: LevelsParam) -> LevelsParam:
        if not value:
            raise ValueError("give at least one level")
        return check_levels(value)


class LevelCross(Rule[LevelCrossParams]):
    """Alert when a close crosses a level; a close exactly on the level keeps the side it came from."""

    kind = "level_cross"
    Params: ClassVar[type[RuleParams]] = LevelCrossParams  # unprofitable_share crosses marks with its own
    reads_flows = False

    def __init__(self, rule_id: str, params: Any) -> None:
        super().__init__(rule_id, params)
        self._keyed = KeyedLevels(params.levels)

    def step(self, state: Mapping[str, Any] | None, symbol: str, bar: Bar, ctx: RuleContext) -> RuleStep:
        """Compare the close with each level and say which ones it crossed."""
        p = self.params
        old: Mapping[str, Any] = (state or {}).get("levels", {})
        prev_close = (state or {}).get("prev_close")
        levels: dict[str, dict[str, Any]] = {}
        events: list[AlertEvent] = []
        band = p.rearm_pct / 100
        for level, key in self._keyed.of(symbol):
            entry = dict(old.get(key, {"side": None, "armed_up": True, "armed_down": True}))
            side = "above" if bar.close > level else "below" if bar.close < level else entry["side"]
            crossed = None
            if entry["side"] == "below" and side == "above":
                crossed = "up"
            elif entry["side"] == "above" and side == "below":
                crossed = "down"
            if crossed and p.direction in (crossed, "either") and entry[f"armed_{crossed}"]:
                entry[f"armed_{crossed}"] = False
                values = {"level": level, "price": bar.close, "direction": crossed, "prev_close": prev_close,
                          "pct_from_level": pct_change(level, bar.close)}
                events.append(AlertEvent(self.rule_id, self.kind, symbol, bar.time, values, f"{key}|{crossed}"))
            # Re-arm once price has gone far enough back to the other side (hysteresis against chop).
            if bar.close < level * (1 - band) or (band == 0 and side == "below"):
                entry["armed_up"] = True
            if bar.close > level * (1 + band) or (band == 0 and side == "above"):
                entry["armed_down"] = True
            entry["side"] = side
            levels[key] = entry
        return {"prev_close": bar.close, "levels": levels}, tuple(events)

    def describe(self, symbols) -> str:
        """Say in words what this rule watches."""
        p = self.params
        way = {"up": "crossing up through", "down": "crossing down through", "either": "crossing"}[p.direction]
        parts = [f"{s} {', '.join(f'{x:.10g}' for x in levels_for(p.levels, s))}" for s in symbols
                 if levels_for(p.levels, s)]
        return f"Close {way} a level: {'; '.join(parts) or ', '.join(symbols)}"
