"""outflow_divergence: the fund's price rallies while money leaves it — the rally is hollow."""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Mapping

from pydantic import Field, model_validator

from alerts.bars import Bar
from alerts.events import AlertEvent
from alerts.rules.base import Rule, RuleContext, RuleParams, RuleStep
from alerts.rules.common import iso, parse_time, pct_change


class OutflowDivergenceParams(RuleParams):
    """Parameters of the outflow-divergence rule."""

    window: int | Literal["ytd"] = Field(
        "ytd", description="ytd (since the last close of the previous year) or a number of trading days"
    )
    min_return_pct: float | None = Field(
        5.0, ge=-100, le=10000, description="the price return over the window must be at least this % (null: off)"
    )
    on_new_high: bool = Field(True, description="a new all-time closing high also counts as the price rally")
    min_outflow_usd: float | None = Field(
        1e9, gt=0, description="net flow over the window at most minus this many dollars (null: off)"
    )
    min_outflow_pct: float | None = Field(
        None, gt=0, le=100, description="or net flow at most minus this % of the fund's assets (needs assets data)"
    )
    reset_bars: int = Field(
        5, ge=1, le=1000, description="after an alert, the divergence must be gone this many bars before it re-alerts"
    )
    max_flow_lag_days: int = Field(
        4, ge=0, le=60,
        description="flow data must reach within this many calendar days of both ends of the window "
        "(4 spans a long weekend)",
    )

    @model_validator(mode="after")
    def _validate_conditions(self) -> OutflowDivergenceParams:
        if isinstance(self.window, int) and not 1 <= self.window <= 2000:
            raise ValueError("window must be ytd or a number of trading days from 1 to 2000")
        if self.min_return_pct is None and not self.on_new_high:
            raise ValueError("set min_return_pct or on_new_high: the rule needs a price condition")
        if self.min_outflow_usd is None and self.min_outflow_pct is None:
            raise ValueError("set min_outflow_usd or min_outflow_pct: the rule needs a flow condition")
        return self


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


class OutflowDivergence(Rule[OutflowDivergenceParams]):
    """Alert when the fund is up (or at a new high) over the window while its net flow is a large outflow."""

    kind = "outflow_divergence"
    Params = OutflowDivergenceParams

    @property
    def lookback(self) -> int:
        """Return how many earlier bars a trading-day window needs (YTD keeps its base in state)."""
        window = self.params.window
        return window if isinstance(window, int) else 0

    def step(self, state: Mapping[str, Any] | None, symbol: str, bar: Bar, ctx: RuleContext) -> RuleStep:
        """Measure the window's return and net flow, and alert when they diverge."""
        p = self.params
        state = dict(state or {})
        ath = state.get("ath")
        new_high = ath is not None and bar.close > ath
        new_state: dict[str, Any] = {
            "ath": bar.close if ath is None or bar.close > ath else ath,
            "prev_close": bar.close, "prev_time": iso(bar.time),
            "active": bool(state.get("active", False)), "off_bars": int(state.get("off_bars", 0)),
        }
        base = self._base(state, new_state, bar, ctx)
        events: tuple[AlertEvent, ...] = ()
        reading = self._measure(base, bar, ctx, new_high) if base else None
        if reading is not None and reading["diverging"]:
            new_state["off_bars"] = 0
            if not new_state["active"]:
                new_state["active"] = True
                values = {k: v for k, v in reading.items() if k != "diverging"}
                events = (AlertEvent(self.rule_id, self.kind, symbol, bar.time, values),)
        elif new_state["active"]:
            new_state["off_bars"] += 1
            if new_state["off_bars"] >= p.reset_bars:
                new_state["active"], new_state["off_bars"] = False, 0
        return RuleStep(new_state, events)

    def _base(self, state: Mapping[str, Any], new_state: dict[str, Any], bar: Bar,
              ctx: RuleContext) -> tuple[float, datetime, str] | None:
        """Return the window's starting close, its time and the window's name; None while unknown."""
        p = self.params
        if isinstance(p.window, int):
            recent = list(ctx.recent)
            if len(recent) < p.window:
                return None
            start = recent[-p.window]
            return start.close, start.time, f"{p.window}d"
        year_base, base_time = state.get("year_base"), state.get("base_time")
        if state.get("year") != bar.time.year:
            # A new year: the base is the previous year's last close. The very first year seen has none.
            year_base, base_time = state.get("prev_close"), state.get("prev_time")
            if state.get("year") is not None:
                new_state["active"], new_state["off_bars"] = False, 0  # a new YTD window starts fresh
        new_state.update(year=bar.time.year, year_base=year_base, base_time=base_time)
        if year_base is None or base_time is None:
            return None
        return float(year_base), parse_time(base_time), "YTD"

    def _measure(self, base: tuple[float, datetime, str], bar: Bar, ctx: RuleContext,
                 new_high: bool) -> dict[str, Any] | None:
        """Return the window's figures, or None when the flow data does not cover the window."""
        p = self.params
        base_close, base_time, label = base
        flows = ctx.flows
        if not flows:
            return None
        lag = timedelta(days=p.max_flow_lag_days)
        first_after = bisect.bisect_right(flows, base_time, key=lambda item: _utc(item[0]))
        last_through = bisect.bisect_right(flows, bar.time, key=lambda item: _utc(item[0]))
        # Unknown flows are not zero flows: without data near both ends of the window, stay silent.
        if first_after >= last_through:
            return None
        if _utc(flows[first_after][0]) > base_time + lag:
            return None  # the flow series starts after the window does
        if _utc(flows[last_through - 1][0]) < bar.time - lag:
            return None  # the flow series is stale
        for (before, _), (after, _) in zip(flows[first_after:last_through - 1], flows[first_after + 1:last_through]):
            if _utc(after) - _utc(before) > lag:
                return None  # a hole inside the window: those days' flows are unknown
        net = sum(float(f) for _, f in flows[first_after:last_through])
        return_pct = pct_change(base_close, bar.close)
        price_ok = (p.min_return_pct is not None and return_pct >= p.min_return_pct) or (p.on_new_high and new_high)
        outflow_pct = -net / ctx.assets_usd * 100 if ctx.assets_usd else None
        flow_ok = (p.min_outflow_usd is not None and net <= -p.min_outflow_usd) or (
            p.min_outflow_pct is not None and outflow_pct is not None and outflow_pct >= p.min_outflow_pct
        )
        return {
            "diverging": price_ok and flow_ok,
            "price": bar.close, "direction": "up", "window": label, "return_pct": return_pct,
            "base_close": base_close, "base_time": iso(base_time)[:10], "new_high": new_high,
            "net_flow_usd": net, "outflow_pct_of_assets": outflow_pct, "flow_days": last_through - first_after,
        }

    def describe(self, symbols) -> str:
        """Say in words what this rule watches."""
        p = self.params
        window = "year to date" if p.window == "ytd" else f"over {p.window} trading days"
        price = []
        if p.min_return_pct is not None:
            price.append(f"up {p.min_return_pct:g}% or more")
        if p.on_new_high:
            price.append("at a new high")
        flow = []
        if p.min_outflow_usd is not None:
            flow.append(f"${p.min_outflow_usd / 1e9:g}B or more")
        if p.min_outflow_pct is not None:
            flow.append(f"{p.min_outflow_pct:g}% of assets or more")
        return (f"Outflow divergence: {', '.join(symbols)} {' or '.join(price)} {window} "
                f"while {' or '.join(flow)} left the fund")
