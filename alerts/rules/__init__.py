"""The one registry of rule kinds, by the `kind` name used in config.yaml."""

from __future__ import annotations

from alerts.rules.base import Rule, RuleContext, RuleParams, RuleStep
from alerts.rules.new_ath import NewAllTimeHigh

RULES: dict[str, type[Rule]] = {
    NewAllTimeHigh.kind: NewAllTimeHigh,
}

__all__ = ["RULES", "Rule", "RuleContext", "RuleParams", "RuleStep"]
