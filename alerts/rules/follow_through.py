"""follow_through: after a leader's breakout (e.g. ^RUT at a new high), did crypto follow within N days?"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal, Mapping, Sequence, get_args

from pydantic import Field

from alerts.bars import Bar
from alerts.events import AlertEvent
from alerts.rules.base import Rule, RuleContext, RuleParams, RuleStep
from alerts.rules.common import WARM_BEFORE, iso, parse_time, pct_change, pct_change_reaches

RECENT_CLOSES = 10  # follower bars kept in state, to judge a trigger that arrives a few bars late


Confirmation = Literal["new_ath", "resistance_flip", "move"]


class FollowThroughParams(RuleParams):
    """Parameters of the follow-through rule; the rule's own `symbols` are the followers."""

    leaders: list[str] = Field(min_length=1, description="symbols whose breakout opens a watch window, e.g. ^RUT")
    trigger_rules: list[str] = Field(
        min_length=1, description="rule ids (or kinds) whose events on a leader are the breakout, e.g. rut_ath"
    )
    window_days: int = Field(30, ge=1, le=365, description="calendar days after the trigger in which a follower must confirm")
    confirm_by: list[Confirmation] = Field(
        default_factory=lambda: list(get_args(Confirmation)),
        min_length=1,
        description="what counts as the follower's own breakout: its new ATH, its resistance flip, a move from the trigger day",
    )
    min_move_pct: float = Field(10.0, gt=0, le=1000, description="move: the follower's close this % above its trigger-day close")
    confirm_rules: list[str] = Field(
        default_factory=list,
        description="resistance_flip: rule ids whose flip events on the follower count (empty: any resistance_flip)",
    )
    alert_on_expiry: bool = Field(
        False, description="also alert when the window closes without a confirmation (on the bar that closes it)")
    min_history_days: int = Field(
        365, ge=0, le=36500, description="days of the follower's history before the rule speaks: its first "
        "highs are where the data starts, not breakouts; windows opened before that are dropped silently")
    same_day_counts: bool = Field(
        False, description="does the follower's own breakout on the trigger day itself confirm? Default no: "
        "both moving on one day is coincidence (or one shared cause), not crypto following small caps")
    fresh_only: bool = Field(
        True,
        description="only a trigger that starts a fresh breakout (new_ath's fresh_episode) opens a window; "
        "triggers that do not say count always",
    )


class FollowThrough(Rule[FollowThroughParams]):
    """Open a watch window on each follower when a leader breaks out; alert when the follower confirms.

    Triggers come from `ctx.cycle_events` (the engine steps a cycle's bars in time order, leaders first)
    and `ctx.recent_events` (events of earlier polls and before a restart: BTC's daily bar closes hours
    after ^RUT's, in another feed's poll).
    The follower's own confirmation is judged from its own bars: the rule tracks the follower's highest
    close itself (a new ATH), its close on the trigger day (the move), and flip events fired on the
    follower's bar earlier in the cycle.
    """

    kind = "follow_through"
    Params = FollowThroughParams
    reads_flows = False

    def __init__(self, rule_id: str, params: FollowThroughParams) -> None:
        super().__init__(rule_id, params)
        # The triggers last worked out, by what they came from (a memo of the step's inputs, held so that
        # their identity stays theirs): the followers' bars of one day, stepped one after another, share them.
        self._seen: tuple[Sequence[AlertEvent], Sequence[AlertEvent], datetime, list[AlertEvent]] | None = None
        self._leaders, self._trigger_rules = frozenset(params.leaders), frozenset(params.trigger_rules)
        self._fresh_only = params.fresh_only
        self._horizon = timedelta(days=params.window_days + 7)
        self._leader_rank = {leader: params.leaders.index(leader) for leader in params.leaders}  # config order

    def step(self, state: Mapping[str, Any] | None, symbol: str, bar: Bar, ctx: RuleContext) -> RuleStep:
        """Track the follower's own high, open windows on new triggers, and settle open windows."""
        p = self.params
        state = state or {}
        ath = state.get("ath")
        made_ath = ath is not None and bar.close > ath
        closes = state.get("closes", [])[-(RECENT_CLOSES - 1):]  # a new list (kept bars are never changed in place)
        # Each kept bar: [time, close, made a new ATH, a resistance flip fired on it].
        closes.append([iso(bar.time), bar.close, made_ath, self._flipped(symbol, ctx)])
        window: dict[str, Any] | None = dict(state["window"]) if state.get("window") else None
        blocked_until: str | None = state.get("blocked_until")
        events: list[AlertEvent] = []

        # One window per rule and follower: ^RUT, IWM and IWN breaking out together are one move, not three.
        # Triggers of this cycle, and of earlier ones (a leader's poll and a follower's are often apart);
        # the same trigger seen again is harmless: it cannot reopen a window (see blocked_until).
        for trigger in self._triggers(ctx, bar):
            day = trigger.bar_time
            if (bar.time - day).days > p.window_days or day > bar.time:
                continue  # stale, or from a bar this follower has not reached
            if window is not None:
                if trigger.symbol != window["leader"] and trigger.symbol not in window["also"]:
                    window["also"] = window["also"] + [trigger.symbol]
                continue
            if blocked_until is not None and iso(day) <= blocked_until:
                continue  # inside the span of the last window: the same breakout
            reference = [c for c in closes if c[0][:10] <= iso(day)[:10]]
            window = {
                "leader": trigger.symbol, "also": [], "trigger_rule": trigger.rule_id, "trigger_kind": trigger.kind,
                "trigger_time": iso(day), "leader_price": trigger.values.get("price"),
                "ref_close": reference[-1][1] if reference else closes[0][1],
            }

        first_time = state.get("first_time") or (WARM_BEFORE if state else iso(bar.time))
        if window is not None and (bar.time - parse_time(first_time)).days < p.min_history_days:
            window = None  # warming up: the follower's history is too short to call anything its breakout
        if window is not None:
            settled = self._settle(window, symbol, bar, closes, ctx, events)
            if settled:
                # The leaders' next triggers inside this span are the same move: no second window.
                blocked_until = iso(parse_time(window["trigger_time"]) + timedelta(days=p.window_days))
                window = None

        new_state = {
            "ath": bar.close if ath is None or bar.close > ath else ath, "closes": closes,
            "window": window, "blocked_until": blocked_until, "first_time": first_time,
        }
        return new_state, tuple(events)

    def _settle(self, window: Mapping[str, Any], symbol: str, bar: Bar, closes: list[list[Any]], ctx: RuleContext,
                events: list[AlertEvent]) -> bool:
        """Alert if the follower confirmed (or the window ran out); say whether the window is done."""
        p = self.params
        trigger_day = parse_time(window["trigger_time"]).date()
        # A window opened late looks back over the follower bars since the trigger day that it has kept.
        for when, close, was_ath, flipped in (c for c in closes if c[0][:10] >= window["trigger_time"][:10]):
            days = (parse_time(when).date() - trigger_day).days
            if days == 0 and not p.same_day_counts:
                continue  # the trigger day itself: coincidence, not follow-through
            reasons = self._confirmations(p, close, was_ath, flipped, window["ref_close"])
            if reasons and days <= p.window_days:
                events.append(self._event(symbol, bar, window, "follow_through", {
                    "days_after": days, "confirmed_by": reasons, "confirmed_on": when[:10], "price": close,
                    "move_pct": pct_change(window["ref_close"], close), "all_time": ctx.truncated_since is None,
                }))
                return True
        # The window closes on the bar `window_days` after the trigger (or the first bar after it, over a gap).
        if (bar.time.date() - trigger_day).days < p.window_days:
            return False
        if p.alert_on_expiry:
            events.append(self._event(symbol, bar, window, "no_follow_through", {
                "price": bar.close, "move_pct": pct_change(window["ref_close"], bar.close), "direction": "down",
            }))
        return True

    def _triggers(self, ctx: RuleContext, bar: Bar) -> list[AlertEvent]:
        """Return the leaders' triggers in view of this bar, oldest first (each trigger once)."""
        seen = self._seen
        if (seen is not None and seen[0] is ctx.recent_events and seen[1] is ctx.cycle_events
                and seen[2] == bar.time):
            return seen[3]
        # Recent events young enough to open a window, scanned back from the newest. Events arrive in time
        # order per feed; feeds can lag each other by a few days, so the scan stops only a week past the
        # window's start. The cost of a step stays that of the window, not the history.
        horizon = bar.time - self._horizon
        is_trigger, leaders = self._is_trigger, self._leaders
        found: dict[tuple[str, str, str, datetime], AlertEvent] = {}
        for e in reversed(ctx.recent_events):
            if e.bar_time < horizon:
                break
            if e.symbol in leaders and is_trigger(e):  # most recent events are the followers' own
                found[(e.rule_id, e.symbol, e.kind, e.bar_time)] = e
        for e in ctx.cycle_events:
            if is_trigger(e):
                found[(e.rule_id, e.symbol, e.kind, e.bar_time)] = e
        rank = self._leader_rank
        triggers = sorted(found.values(), key=lambda e: (e.bar_time, rank[e.symbol])) if found else []
        if type(ctx.recent_events) is tuple and type(ctx.cycle_events) is tuple:  # immutable: safe to memo by identity
            self._seen = (ctx.recent_events, ctx.cycle_events, bar.time, triggers)
        return triggers

    def _is_trigger(self, event: AlertEvent) -> bool:
        if event.symbol not in self._leaders or event.rule_id == self.rule_id:
            return False
        if event.rule_id not in self._trigger_rules and event.kind not in self._trigger_rules:
            return False
        return not (self._fresh_only and event.values.get("fresh_episode") is False)

    def _flipped(self, symbol: str, ctx: RuleContext) -> bool:
        """Say whether a resistance flip fired on this follower's bar earlier in the cycle."""
        p = self.params
        return bool(ctx.cycle_events) and any(
            e.symbol == symbol and e.kind == "resistance_flip" and (not p.confirm_rules or e.rule_id in p.confirm_rules)
            for e in ctx.cycle_events
        )

    @staticmethod
    def _confirmations(p: FollowThroughParams, close: float, was_ath: bool, flipped: bool, ref: float) -> list[str]:
        reasons = []
        if "new_ath" in p.confirm_by and was_ath:
            reasons.append("new_ath")
        if "resistance_flip" in p.confirm_by and flipped:
            reasons.append("resistance_flip")
        if "move" in p.confirm_by and pct_change_reaches(ref, close, p.min_move_pct):
            reasons.append("move")
        return reasons

    def _event(self, symbol: str, bar: Bar, window: Mapping[str, Any], kind: str,
               extra: Mapping[str, Any]) -> AlertEvent:
        values = {
            "leader": window["leader"], "also": list(window["also"]), "trigger_rule": window["trigger_rule"],
            "trigger_kind": window["trigger_kind"], "trigger_time": window["trigger_time"][:10],
            "leader_price": window["leader_price"], "ref_close": window["ref_close"],
            "window_days": self.params.window_days,
            "direction": "up", **extra,
        }
        return AlertEvent(self.rule_id, kind, symbol, bar.time, values, window["trigger_time"][:10])

    def describe(self, symbols) -> str:
        """Say in words what this rule watches."""
        p = self.params
        how = {"new_ath": "a new all-time high", "resistance_flip": "a resistance flip",
               "move": f"a {p.min_move_pct:g}% move"}
        confirm = " or ".join(how[c] for c in p.confirm_by)
        tail = "; silence is reported too" if p.alert_on_expiry else ""
        return (f"Follow-through: after {', '.join(p.trigger_rules)} fires on {', '.join(p.leaders)}, watch "
                f"{', '.join(symbols)} for {p.window_days} days for {confirm}{tail}")
