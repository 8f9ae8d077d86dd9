"""The one registry of rule kinds, by the `kind` name used in config.yaml."""

from __future__ import annotations

from alerts.rules.base import Rule, RuleContext, RuleParams, RuleStep
from alerts.rules.drawdown import Drawdown
from alerts.rules.follow_through import FollowThrough
from alerts.rules.level_cross import LevelCross
from alerts.rules.new_ath import NewAllTimeHigh
from alerts.rules.outflow_divergence import OutflowDivergence
from alerts.rules.pct_move import PctMove
from alerts.rules.resistance_flip import ResistanceFlip
from alerts.rules.unprofitable_share import UnprofitableShare

RULES: dict[str, type[Rule]] = {
    NewAllTimeHigh.kind: NewAllTimeHigh,
    ResistanceFlip.kind: ResistanceFlip,
    OutflowDivergence.kind: OutflowDivergence,
    FollowThrough.kind: FollowThrough,
    LevelCross.kind: LevelCross,
    PctMove.kind: PctMove,
    Drawdown.kind: Drawdown,
    UnprofitableShare.kind: UnprofitableShare,
}

__all__ = ["RULES", "Rule", "RuleContext", "RuleParams", "RuleStep"]
