"""resistance_flip: old resistance turns into support (break, retest, hold), per level, as a state machine."""

from __future__ import annotations

from typing import Any, Literal, Mapping

from pydantic import Field, field_validator, model_validator

from alerts.bars import Bar
from alerts.events import AlertEvent
from alerts.rules.base import Rule, RuleContext, RuleParams, RuleStep
from alerts.rules.common import (
    ABOVE_TIE,
    BELOW_TIE,
    WARM_BEFORE,
    KeyedLevels,
    LevelsParam,
    above,
    below,
    check_levels,
    iso,
    level_key,
    levels_field,
    levels_for,
    parse_time,
    pct_change,
)

# Phases of one level (docs/rules.md draws them). armed: it is resistance, waiting for a break (a detected
# level is armed by the first close above the old high, however small). broken: a close cleared it by
# break_pct. retested: after the break, a low came back within tolerance. above: flipped (support) or ran
# away without a retest; a configured level becomes resistance again (armed) only after a close `rearm_pct`
# below it, a detected one is then done (the next attempt comes from a new high).
ARMED, BROKEN, RETESTED, ABOVE = "armed", "broken", "retested", "above"
MAX_DETECTED = 20  # detected levels in play at once; bounds the state (and the cost of a step)
MAX_USED_SWINGS = 200


class ResistanceFlipParams(RuleParams):
    """Parameters of the resistance-flip rule."""

    levels: LevelsParam = levels_field(
        "resistance levels: a list for every symbol, or a mapping symbol -> list (e.g. {'^RUT': [2442.74]})"
    )
    detect: Literal["off", "prior_ath", "swing_highs"] = Field(
        "off", description="also find levels: the prior all-time high, or swing highs over `lookback` bars"
    )
    by: Literal["close", "high"] = Field(
        "close", description="detected levels are closing highs (close) or intraday highs (high)"
    )
    break_pct: float = Field(0.5, ge=0, le=50, description="a break is a close above the level by at least this %")
    tolerance_pct: float = Field(
        1.0, ge=0, le=50,
        description="a retest is a low within this % of the level; a close below the level by more is a failed flip",
    )
    retest_within: int = Field(20, ge=1, le=1000, description="bars after the break in which the retest must come")
    hold_bars: int = Field(3, ge=1, le=250, description="consecutive closes above the level, from the retest, to confirm")
    alert_failed: bool = Field(False, description="also alert when a broken level fails (a close back below it)")
    rearm_pct: float = Field(
        5.0, ge=0, le=90,
        description="after a flip (or a breakout that never retested), the level is resistance again only after "
        "a close this % below it",
    )
    min_level_age: int = Field(
        60, ge=1, le=10000,
        description="prior_ath: bars the all-time high must have stood before a close above it arms it as a level",
    )
    min_history_days: int = Field(
        365, ge=0, le=36500,
        description="detected levels: days of history the rule must have seen before a high can be a level "
        "(the first bars' highs are where the data starts, not resistance)",
    )
    lookback: int = Field(250, ge=10, le=5000, description="swing_highs: bars searched for swing highs")
    swing_strength: int = Field(5, ge=1, le=100, description="swing_highs: a swing high tops this many bars each side")

    _check_levels = field_validator("levels")(classmethod(lambda cls, v: check_levels(v)))

    @model_validator(mode="after")
    def _validate_sources(self) -> ResistanceFlipParams:
        if not self.levels and self.detect == "off":
            raise ValueError("give `levels` or set `detect` to prior_ath or swing_highs: the rule has no level to watch")
        if self.rearm_pct < self.tolerance_pct:
            raise ValueError("`rearm_pct` must be at least `tolerance_pct`: a dip inside the retest zone is no reset")
        if self.detect == "swing_highs" and self.lookback <= 2 * self.swing_strength:
            raise ValueError("`lookback` must be more than twice `swing_strength` to hold a swing high")
        return self


class ResistanceFlip(Rule[ResistanceFlipParams]):
    """Alert when a resistance level is broken, retested from above and held: resistance turned support."""

    kind = "resistance_flip"
    Params = ResistanceFlipParams
    reads_flows = False

    @property
    def lookback(self) -> int:
        """Return how many earlier bars swing-high detection reads; the other modes keep all they need in state."""
        p = self.params
        return p.lookback if p.detect == "swing_highs" else 0

    def __init__(self, rule_id: str, params: ResistanceFlipParams) -> None:
        super().__init__(rule_id, params)
        self._configured = KeyedLevels(params.levels)
        self._configured_keys: dict[str, tuple[str, ...]] = {}  # each symbol's level keys, in the state's order
        # Each symbol's levels mapping last seen holding just its configured levels, in order: most steps hand
        # the same mapping on, and it is told by identity instead of by its keys.
        self._plain: dict[str, Mapping[str, Any]] = {}
        # What every step multiplies a level by, worked out once (parameters are frozen): the same floats as
        # `level * (1 + p.break_pct / 100)` written out each time.
        self._break_factor = 1 + params.break_pct / 100
        self._fail_factor = 1 - params.tolerance_pct / 100
        self._retest_factor = 1 + params.tolerance_pct / 100
        self._rearm_factor = 1 - params.rearm_pct / 100
        self._detect, self._by_close = params.detect, params.by == "close"
        self._min_level_age = params.min_level_age

    def step(self, state: Mapping[str, Any] | None, symbol: str, bar: Bar, ctx: RuleContext) -> RuleStep:
        """Advance every level's state machine by one bar."""
        p = self.params
        state = state or {}
        index = int(state.get("bars_seen", 0))
        old_levels: Mapping[str, Any] = state.get("levels", {})
        if old_levels is self._plain.get(symbol):
            levels = old_levels  # the mapping last found to hold just the configured levels (never changed in place)
        else:
            keys = self._configured_keys.get(symbol)
            if keys is not None and len(old_levels) == len(keys) and tuple(old_levels) == keys:
                levels = self._plain[symbol] = old_levels  # just the configured levels, in order: in play as they are
            else:
                levels = self._in_play(old_levels, symbol, state.get("prev_close"), bar)

        events: list[AlertEvent] = []
        # Entries are never changed in place, and neither is the mapping they came in: a level that moved
        # gets a new entry in a copy of it (most bars move none, and share the old state's levels).
        own: dict[str, Any] | None = None  # the levels as this step changed them, once it has changed one
        # below(close, level * rearm) and above(close, level * break) written out: the same floats, without two
        # calls per level on every bar (most steps test a waiting level or two and go on).
        close, rearm_factor, break_factor = bar.close, self._rearm_factor, self._break_factor
        for key, entry in levels.items():
            if entry["source"] == "configured":  # a waiting configured level that stays so: nothing to do
                phase = entry["phase"]
                if phase == ABOVE and not close < float(entry["level"]) * rearm_factor * BELOW_TIE:
                    continue
                if phase == ARMED and not close > float(entry["level"]) * break_factor * ABOVE_TIE:
                    continue
            new_entry, event = self._advance(entry, symbol, bar)
            if event is not None:
                events.append(event)
            if new_entry["source"] != "configured" and (new_entry["phase"] == ABOVE
                                                        or self._expired(new_entry, bar, p)):
                if own is None:
                    own = dict(levels)
                del own[key]  # a detected level's attempt is over; the next comes from a new high
            elif new_entry is not entry:
                if own is None:
                    own = dict(levels)
                own[key] = new_entry
        if own is not None:
            levels = own

        # A state saved before warm-up was tracked has seen its history already: it counts as warmed up.
        first_time = state.get("first_time") or (WARM_BEFORE if state else iso(bar.time))
        price = bar.close if self._by_close else bar.high
        if self._detect == "prior_ath":
            ath, ath_index = state.get("ath"), state.get("ath_index", 0)
            # The old high counts only when the history before it covers min_history_days: a high of the
            # series' first months is where the data starts, not a known all-time high.
            if (ath is not None and close > ath * ABOVE_TIE and index - ath_index >= self._min_level_age
                    and (parse_time(state["ath_time"]) - parse_time(first_time)).days >= p.min_history_days):
                own = levels = dict(levels) if own is None else own  # opened in a copy
                event = self._open(own, ath, f"prior all-time high of {state['ath_time'][:10]}", symbol, bar, p)
                if event is not None:
                    events.append(event)
            if ath is None or price > ath:
                ath, ath_index, ath_time = price, index, iso(bar.time)
            else:
                ath_time = state["ath_time"]
            # Built whole: a dict grown key by key past five entries is copied into a bigger one on the way.
            return ({"prev_close": bar.close, "bars_seen": index + 1, "levels": levels, "first_time": first_time,
                     "ath_time": ath_time, "ath": ath, "ath_index": ath_index}, tuple(events) if events else ())
        new_state: dict[str, Any] = {"prev_close": bar.close, "bars_seen": index + 1, "levels": levels,
                                     "first_time": first_time}
        if self._detect == "swing_highs" and (bar.time - parse_time(first_time)).days >= p.min_history_days:
            own = new_state["levels"] = dict(levels) if own is None else own  # a swing may open a level
            new_state["used_swings"] = self._detect_swings(own, state.get("used_swings", []), symbol, bar, ctx, p,
                                                           events)
        elif self._detect == "swing_highs":
            new_state["used_swings"] = list(state.get("used_swings", []))
        return new_state, tuple(events) if events else ()

    def _in_play(self, old_levels: Mapping[str, Any], symbol: str, prev_close: float | None,
                 bar: Bar) -> Mapping[str, Any]:
        """Return the levels in play before this bar: the old state's own mapping when it holds just the configured
        levels, in order; else a new one, configured levels first, then the detected ones."""
        configured = self._configured.of(symbol)
        keys = self._configured_keys.get(symbol)
        if keys is None:
            keys = self._configured_keys[symbol] = tuple(key for _, key in configured)
        if len(old_levels) == len(keys) and tuple(old_levels) == keys:
            return old_levels
        levels: dict[str, Any] = {}
        # Configured levels: always in play; a level new to the state starts from where price stands.
        for level, key in configured:
            if key in old_levels:
                levels[key] = old_levels[key]
            else:
                reference = prev_close if prev_close is not None else bar.close
                phase = ABOVE if above(reference, level * self._break_factor) else ARMED
                levels[key] = {"level": level, "source": "configured", "phase": phase}
        for key, entry in old_levels.items():
            if entry.get("source") != "configured" and key not in levels:
                levels[key] = entry
        return levels

    def _expired(self, entry: Mapping[str, Any], bar: Bar, p: ResistanceFlipParams) -> bool:
        """Say whether a detected, armed level is given up: a close `rearm_pct` under it ends the attempt."""
        return entry["phase"] == ARMED and below(bar.close, float(entry["level"]) * self._rearm_factor)

    def _open(self, levels: dict[str, dict[str, Any]], level: float, source: str, symbol: str, bar: Bar,
              p: ResistanceFlipParams) -> AlertEvent | None:
        """Arm a detected level on the close above it (broken at once if that close clears break_pct).

        Nothing opens when a level already in play is that close: it is the same level.
        """
        if any(abs(pct_change(e["level"], level)) <= p.tolerance_pct for e in levels.values()):
            return None
        detected = [k for k, e in levels.items() if e["source"] != "configured"]
        if len(detected) >= MAX_DETECTED:
            del levels[detected[0]]
        entry, event = self._advance({"level": level, "source": source, "phase": ARMED}, symbol, bar)
        levels[level_key(level)] = entry
        return event

    def _detect_swings(self, levels: dict[str, dict[str, Any]], used: list[str], symbol: str, bar: Bar,
                       ctx: RuleContext, p: ResistanceFlipParams, events: list[AlertEvent]) -> list[str]:
        """Open a pattern on the highest unbroken swing high this bar closes above; return the swings used."""
        recent = list(ctx.recent)[-p.lookback:]
        if not recent:
            return list(used)
        oldest = iso(recent[0].time)
        used_set = {t for t in used if t >= oldest}  # older swings have left the window and cannot come back
        prices = [b.close if p.by == "close" else b.high for b in recent]
        strength = p.swing_strength
        broken: list[tuple[float, str]] = []
        highest_close_after = float("-inf")  # the highest close after a pivot, up to the previous bar
        for i in range(len(recent) - 1, -1, -1):
            level = prices[i]
            threshold = level * (1 + p.break_pct / 100)
            # Cheapest test first: most bars of the window are not even below this close.
            if (strength <= i < len(recent) - strength and above(bar.close, threshold)
                    and not above(highest_close_after, threshold)
                    and level > max(prices[i - strength:i]) and level >= max(prices[i + 1:i + strength + 1])
                    and iso(recent[i].time) not in used_set):
                broken.append((level, iso(recent[i].time)))
            highest_close_after = max(highest_close_after, recent[i].close)
        if broken:
            level, when = max(broken)
            event = self._open(levels, level, f"swing high of {when[:10]}", symbol, bar, p)
            if event is not None:
                events.append(event)
            used_set.update(t for _, t in broken)
        return sorted(used_set)[-MAX_USED_SWINGS:]

    def _advance(self, entry: dict[str, Any], symbol: str, bar: Bar) -> tuple[dict[str, Any], AlertEvent | None]:
        """Move one level's phase by one bar; return the new entry and the event it fires, if any."""
        p = self.params
        phase = entry["phase"]
        level = float(entry["level"])
        # The waiting phases first (most bars of most levels): one comparison, the entry kept as it is.
        if phase == ABOVE:
            if below(bar.close, level * self._rearm_factor):
                return {"level": level, "source": entry["source"], "phase": ARMED}, None
            return entry, None
        if phase == ARMED:
            if above(bar.close, level * self._break_factor):
                return {"level": level, "source": entry["source"], "phase": BROKEN, "break_time": iso(bar.time),
                        "break_close": bar.close, "bars_since_break": 0}, None
            return entry, None
        if phase == BROKEN and entry.get("break_time") == iso(bar.time):
            return entry, None  # the break bar itself (a detected level opened on this bar)
        fail_below = level * self._fail_factor
        entry = dict(entry)
        if below(bar.close, fail_below):
            failed = {"level": level, "source": entry["source"], "phase": ARMED}
            if not p.alert_failed:
                return failed, None
            values = {
                "level": level, "source": entry["source"], "price": bar.close, "direction": "down",
                "pct_from_level": pct_change(level, bar.close), "break_time": entry["break_time"][:10],
                "break_close": entry["break_close"], "retested": phase == RETESTED,
            }
            return failed, AlertEvent(self.rule_id, "failed_flip", symbol, bar.time, values, level_key(level))
        if phase == BROKEN:
            entry["bars_since_break"] = int(entry["bars_since_break"]) + 1
            if not above(bar.low, level * self._retest_factor):
                entry.update(phase=RETESTED, retest_time=iso(bar.time), retest_low=bar.low, hold=0)
                phase = RETESTED
            elif entry["bars_since_break"] >= p.retest_within:
                # It ran away without coming back: no flip to confirm; the level sits below price.
                return {"level": level, "source": entry["source"], "phase": ABOVE}, None
            else:
                return entry, None
        # RETESTED: count consecutive closes above the level, the retest bar included (a tie is not above).
        entry["retest_low"] = min(float(entry["retest_low"]), bar.low)
        entry["hold"] = int(entry.get("hold", 0)) + 1 if above(bar.close, level) else 0
        if entry["hold"] < p.hold_bars:
            return entry, None
        values = {
            "level": level, "source": entry["source"], "price": bar.close, "direction": "up",
            "pct_above_level": pct_change(level, bar.close), "break_time": entry["break_time"][:10],
            "break_close": entry["break_close"], "retest_time": entry["retest_time"][:10],
            "retest_low": entry["retest_low"], "hold_bars": entry["hold"],
        }
        flipped = {"level": level, "source": entry["source"], "phase": ABOVE}
        return flipped, AlertEvent(self.rule_id, self.kind, symbol, bar.time, values, level_key(level))

    def describe(self, symbols) -> str:
        """Say in words what this rule watches."""
        p = self.params
        parts = []
        for symbol in symbols:
            levels = levels_for(p.levels, symbol)
            if levels:
                parts.append(f"{symbol} at {', '.join(f'{x:.10g}' for x in levels)}")
        where = "; ".join(parts) if parts else ", ".join(symbols)
        found = {"off": "", "prior_ath": " and at the prior all-time high",
                 "swing_highs": f" and at swing highs of the last {p.lookback} bars"}[p.detect]
        return (f"Resistance turned support: {where}{found} — a close {p.break_pct:g}% above, a retest within "
                f"{p.tolerance_pct:g}% inside {p.retest_within} bars, then {p.hold_bars} closes above"
                + ("; failed flips alerted" if p.alert_failed else ""))
