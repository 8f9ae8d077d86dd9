"""unprofitable_share: the share of an index's members losing money crossing a mark (e.g. 40 %)."""

from __future__ import annotations

from typing import Literal, Sequence, cast

from pydantic import Field, field_validator

from alerts.rules.base import RuleParams
from alerts.rules.level_cross import LevelCross


class UnprofitableShareParams(RuleParams):
    """Parameters of the unprofitable-share rule."""

    levels: list[float] = Field(description="marks in percent of members (or of index weight), e.g. [40]")
    direction: Literal["up", "down", "either"] = Field("up", description="which crossings alert (up: more "
                                                                         "members losing money)")
    rearm_pct: float = Field(
        5.0, ge=0, le=50, description="after an alert, the next one the same way needs a snapshot this % of the "
        "mark on the other side first (5: 2 points under a 40 % mark)")

    @field_validator("levels")
    @classmethod
    def _percent_marks(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("give at least one mark, e.g. [40]")
        for mark in value:
            if not 0 < mark < 100:
                raise ValueError(f"mark {mark} must be a percent between 0 and 100")
        return value


class UnprofitableShare(LevelCross):
    """Alert when a fragility snapshot's unprofitable share crosses a mark; only complete snapshots are bars."""

    kind = "unprofitable_share"
    Params = UnprofitableShareParams

    def describe(self, symbols: Sequence[str]) -> str:
        """Say in words what this rule watches."""
        p = cast(UnprofitableShareParams, self.params)  # a LevelCross built with this kind's own Params
        way = {"up": "rising above", "down": "falling below", "either": "crossing"}[p.direction]
        marks = " / ".join(f"{mark:g} %" for mark in sorted(p.levels))
        return f"Share of members losing money (TTM) {way} {marks}: {', '.join(symbols)}"
