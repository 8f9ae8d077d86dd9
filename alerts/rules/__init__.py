"""The one registry of rule kinds, by the `kind` name used in config.yaml; a kind's module loads when it is named."""

from __future__ import annotations

from alerts.registry import LazyRegistry, loads
from alerts.rules.base import Rule, RuleContext, RuleParams, RuleStep

RULES: LazyRegistry[type[Rule]] = LazyRegistry({
    "new_ath": loads("alerts.rules.new_ath", "NewAllTimeHigh"),
    "resistance_flip": loads("alerts.rules.resistance_flip", "ResistanceFlip"),
    "outflow_divergence": loads("alerts.rules.outflow_divergence", "OutflowDivergence"),
    "follow_through": loads("alerts.rules.follow_through", "FollowThrough"),
    "level_cross": loads("alerts.rules.level_cross", "LevelCross"),
    "pct_move": loads("alerts.rules.pct_move", "PctMove"),
    "drawdown": loads("alerts.rules.drawdown", "Drawdown"),
    "unprofitable_share": loads("alerts.rules.unprofitable_share", "UnprofitableShare"),
})

__all__ = ["RULES", "Rule", "RuleContext", "RuleParams", "RuleStep"]
