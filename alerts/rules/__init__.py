"""The one registry of rule kinds, by the `kind` name used in config.yaml; a kind's module loads when it is named."""

from __future__ import annotations

from alerts.registry import LazyRegistry
from alerts.rules.base import Rule, RuleContext, RuleParams, RuleStep


def _new_ath() -> type[Rule]:
    from alerts.rules.new_ath import NewAllTimeHigh
    return NewAllTimeHigh


def _resistance_flip() -> type[Rule]:
    from alerts.rules.resistance_flip import ResistanceFlip
    return ResistanceFlip


def _outflow_divergence() -> type[Rule]:
    from alerts.rules.outflow_divergence import OutflowDivergence
    return OutflowDivergence


def _follow_through() -> type[Rule]:
    from alerts.rules.follow_through import FollowThrough
    return FollowThrough


def _level_cross() -> type[Rule]:
    from alerts.rules.level_cross import LevelCross
    return LevelCross


def _pct_move() -> type[Rule]:
    from alerts.rules.pct_move import PctMove
    return PctMove


def _drawdown() -> type[Rule]:
    from alerts.rules.drawdown import Drawdown
    return Drawdown


def _unprofitable_share() -> type[Rule]:
    from alerts.rules.unprofitable_share import UnprofitableShare
    return UnprofitableShare


RULES: LazyRegistry[type[Rule]] = LazyRegistry({
    "new_ath": _new_ath,
    "resistance_flip": _resistance_flip,
    "outflow_divergence": _outflow_divergence,
    "follow_through": _follow_through,
    "level_cross": _level_cross,
    "pct_move": _pct_move,
    "drawdown": _drawdown,
    "unprofitable_share": _unprofitable_share,
})

__all__ = ["RULES", "Rule", "RuleContext", "RuleParams", "RuleStep"]
