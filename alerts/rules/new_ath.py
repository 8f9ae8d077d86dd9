"""new_ath: a close (or intraday high) above every earlier bar of the whole history."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Mapping

from pydantic import Field

from alerts.bars import Bar
from alerts.events import AlertEvent
from alerts.rules.base import Rule, RuleContext, RuleParams, RuleStep
from alerts.rules.common import WARM_BEFORE


class NewAllTimeHighParams(RuleParams):
    """Parameters of the new all-time-high rule."""

    by: Literal["close", "high"] = Field(
        "close", description="close: decided once the bar closes; high: intraday, as soon as the high prints"
    )
    rearm_pct: float = Field(
        0.0, ge=0, le=1000, description="after an alert, the next needs a high this many percent above the last alerted one"
    )
    min_gap_days: int = Field(
        30, ge=0, le=36500, description="an ATH after this many days without one starts a fresh breakout episode (0: never)"
    )
    min_history_days: int = Field(
        365, ge=0, le=36500,
        description="days of history before a high is news: until then highs set the mark silently (the second "
        "bar of a series is above everything before it, which says nothing)",
    )


class NewAllTimeHigh(Rule[NewAllTimeHighParams]):
    """Alert when price makes a high above every earlier bar."""

    kind = "new_ath"
    Params = NewAllTimeHighParams
    reads_flows = False

    def __init__(self, rule_id: str, params: NewAllTimeHighParams) -> None:
        super().__init__(rule_id, params)
        self._by_close = params.by == "close"  # read on every bar: a parameter's attribute costs 5x a plain one

    @property
    def reads_forming_bars(self) -> bool:  # type: ignore[override]
        return self.params.by == "high"

    def step(self, state: Mapping[str, Any] | None, symbol: str, bar: Bar, ctx: RuleContext) -> RuleStep:
        """Advance the running high by one bar and say whether it is a new all-time high."""
        params = self.params
        price = bar.close if self._by_close else bar.high
        if state is None or state.get("ath") is None:
            # The first bar has nothing earlier to beat: it sets the mark, it is not a breakout.
            return {"ath": price, "ath_time": bar.time.isoformat(), "last_alerted": None,
                    "first_time": bar.time.isoformat()}, ()
        previous = float(state["ath"])
        if price <= previous:  # a tie is not a new high
            return state, ()  # unchanged (a rule never changes the state it is given)
        # A state saved before warm-up was tracked has seen its history already: it counts as warmed up.
        first_time = state.get("first_time") or WARM_BEFORE
        previous_time = datetime.fromisoformat(state["ath_time"])
        days_since = (bar.time - previous_time).days
        fresh = params.min_gap_days > 0 and days_since >= params.min_gap_days
        new_state = {"ath": price, "ath_time": bar.time.isoformat(), "last_alerted": state.get("last_alerted"),
                     "first_time": first_time}
        if (bar.time - datetime.fromisoformat(first_time)).days < params.min_history_days:
            return new_state, ()  # warming up: too little history to call anything a high
        last_alerted = state.get("last_alerted")
        armed = last_alerted is None or fresh or price >= float(last_alerted) * (1 + params.rearm_pct / 100)
        if not armed:
            return new_state, ()
        new_state["last_alerted"] = price
        values = {
            "price": price,
            "by": params.by,
            "previous_ath": previous,
            "previous_ath_time": previous_time.date().isoformat(),
            "days_since_previous_ath": days_since,
            "pct_above_previous": (price / previous - 1) * 100,
            "fresh_episode": fresh,
            "all_time": ctx.truncated_since is None,
            "since": ctx.truncated_since.date().isoformat() if ctx.truncated_since else None,
        }
        return new_state, (AlertEvent(self.rule_id, self.kind, symbol, bar.time, values),)

    def describe(self, symbols) -> str:
        """Say in words what this rule watches."""
        p = self.params
        how = "closes" if p.by == "close" else "trades (intraday high)"
        extra = f", re-alerting only {p.rearm_pct:g}% above the last alert" if p.rearm_pct else ""
        return f"New all-time high: {', '.join(symbols)} {how} above every earlier bar{extra}"
