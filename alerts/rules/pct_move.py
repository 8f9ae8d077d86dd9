"""pct_move: the close moved at least x % over the last N bars."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Mapping

from pydantic import Field

from alerts.bars import Bar
from alerts.events import AlertEvent
from alerts.rules.base import Rule, RuleContext, RuleParams, RuleStep
from alerts.rules.common import WARM_BEFORE, iso, parse_time, pct_change


class PctMoveParams(RuleParams):
    """Parameters of the percent-move rule."""

    bars: int = Field(5, ge=1, le=1000, description="the move is measured from the close this many bars back")
    min_pct: float = Field(10.0, gt=0, le=10000, description="alert when the move is at least this %")
    direction: Literal["up", "down", "either"] = Field("either", description="which moves alert")
    min_history_days: int = Field(
        0, ge=0, le=36500, description="days of history before a move is news (a new listing's first months "
        "swing wildly); moves before that are tracked silently")


class PctMove(Rule[PctMoveParams]):
    """Alert when the close is up (or down) at least `min_pct` from the close `bars` bars back."""

    kind = "pct_move"
    Params = PctMoveParams
    reads_flows = False

    def __init__(self, rule_id: str, params: PctMoveParams) -> None:
        super().__init__(rule_id, params)
        self._first_read: tuple[str, datetime] | None = None  # a state's first bar time, as text and as read
        # Read on every bar (a parameter's attribute costs 5x a plain one): the window and the thresholds.
        self._bars, self._min_pct = params.bars, params.min_pct

    @property
    def lookback(self) -> int:
        """Return how many earlier bars the move needs."""
        return self.params.bars

    def step(self, state: Mapping[str, Any] | None, symbol: str, bar: Bar, ctx: RuleContext) -> RuleStep:
        """Measure the move over the window; alert when it first reaches the threshold."""
        p = self.params
        recent, bars, min_pct = ctx.recent, self._bars, self._min_pct
        if state and len(recent) >= bars and len(state) == 2 and state.get("first_time"):
            # Most bars: the move is short of the threshold both ways and re-arms nothing that is not armed
            # already; the state stays the one given (never changed in place).
            move = pct_change(recent[-bars].close, bar.close)
            old = state.get("active")
            if (-min_pct < move < min_pct and isinstance(old, dict)
                    and (move >= min_pct / 2 or old.get("up", True) is False)
                    and (-move >= min_pct / 2 or old.get("down", True) is False)):
                return state, ()
        active = dict((state or {}).get("active", {"up": False, "down": False}))
        # A state saved before warm-up was tracked has seen its history already: it counts as warmed up.
        first_time = (state or {}).get("first_time") or (WARM_BEFORE if state else iso(bar.time))
        if len(recent) < p.bars:
            return {"active": active, "first_time": first_time}, ()  # no move to measure yet
        warm = (bar.time - self._first_time(first_time)).days >= p.min_history_days
        start = recent[-p.bars]
        move = pct_change(start.close, bar.close)
        events = []
        for way, size in (("up", move), ("down", -move)):
            if size >= p.min_pct:
                if not active[way] and p.direction in (way, "either") and warm:
                    values = {"price": bar.close, "direction": way, "move_pct": move, "bars": p.bars,
                              "from_close": start.close, "from_time": iso(start.time)[:10]}
                    events.append(AlertEvent(self.rule_id, self.kind, symbol, bar.time, values, way))
                active[way] = True
            elif size < p.min_pct / 2:
                # Re-arm only once the move has faded to half the threshold, so a move hovering at it
                # does not alert every other bar.
                active[way] = False
        return {"active": active, "first_time": first_time}, tuple(events)

    def _first_time(self, text: str) -> datetime:
        """Return the first bar time of a state, read once per text (it stays the same for a series' life)."""
        read = self._first_read
        if read is None or read[0] != text:
            read = self._first_read = (text, parse_time(text))
        return read[1]

    def describe(self, symbols) -> str:
        """Say in words what this rule watches."""
        p = self.params
        way = {"up": "up", "down": "down", "either": "up or down"}[p.direction]
        return f"Move: {', '.join(symbols)} {way} {p.min_pct:g}% or more over {p.bars} bars"
