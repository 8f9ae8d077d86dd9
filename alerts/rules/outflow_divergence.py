"""outflow_divergence: the fund's price rallies while money leaves it — the rally is hollow."""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Mapping, Sequence

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


class FlowWindows:
    """A fund's flow series indexed for windows: times (UTC), amounts, and holes counted so far.

    A step then finds its window by bisection and checks it for holes in O(1), instead of scanning it. Built
    once per series; a series that only grew (the flows known so far, one more day) extends it.
    """

    def __init__(self, lag: timedelta) -> None:
        self.lag = lag
        self.flows: list[tuple[datetime, float]] = []
        self.times: list[datetime] = []
        self.amounts: list[float] = []
        self.holes: list[int] = []  # holes[i]: gaps longer than `lag` between consecutive flows up to flow i

    def update(self, flows: Sequence[tuple[datetime, float]]) -> None:
        """Index `flows`, keeping what it shares with the series indexed before."""
        kept = min(len(flows), len(self.flows))
        if self.flows[:kept] != list(flows[:kept]):
            kept = 0
        del self.flows[kept:], self.times[kept:], self.amounts[kept:], self.holes[kept:]
        for item in flows[kept:]:
            moment = _utc(item[0])
            hole = bool(self.times) and moment - self.times[-1] > self.lag
            self.holes.append((self.holes[-1] if self.holes else 0) + hole)
            self.flows.append(item)
            self.times.append(moment)
            self.amounts.append(float(item[1]))

    def __len__(self) -> int:
        return len(self.flows)


class OutflowDivergence(Rule[OutflowDivergenceParams]):
    """Alert when the fund is up (or at a new high) over the window while its net flow is a large outflow."""

    kind = "outflow_divergence"
    Params = OutflowDivergenceParams

    @property
    def lookback(self) -> int:
        """Return how many earlier bars a trading-day window needs (YTD keeps its base in state)."""
        window = self.params.window
        return window if isinstance(window, int) else 0

    def __init__(self, rule_id: str, params: OutflowDivergenceParams) -> None:
        super().__init__(rule_id, params)
        # Each symbol's flows as last seen, indexed (a memo of ctx.flows: the step stays a function of its input).
        self._indexed: dict[str, tuple[Sequence[tuple[datetime, float]], FlowWindows]] = {}
        self._label = f"{params.window}d" if isinstance(params.window, int) else "YTD"
        self._window = params.window  # read on every bar: a parameter's attribute costs 5x a plain one
        self._base_time: tuple[str, datetime] | None = None  # the YTD base's time as text and as read

    def step(self, state: Mapping[str, Any] | None, symbol: str, bar: Bar, ctx: RuleContext) -> RuleStep:
        """Measure the window's return and net flow, and alert when they diverge."""
        p = self.params
        state = state or {}
        ath = state.get("ath")
        new_high = ath is not None and bar.close > ath
        new_state: dict[str, Any] = {
            "ath": bar.close if ath is None or bar.close > ath else ath,
            "prev_close": bar.close, "prev_time": iso(bar.time),
            "active": bool(state.get("active", False)), "off_bars": int(state.get("off_bars", 0)),
        }
        base = self._base(state, new_state, bar, ctx)
        events: tuple[AlertEvent, ...] = ()
        # No flows known yet (most of a fund's history): nothing to measure.
        reading = self._measure(base, bar, ctx, new_high, symbol) if base and ctx.flows else None
        if base and reading is not None and reading[0]:
            new_state["off_bars"] = 0
            if not new_state["active"]:
                new_state["active"] = True
                values = self._values(base, bar, new_high, reading)
                events = (AlertEvent(self.rule_id, self.kind, symbol, bar.time, values),)
        elif new_state["active"]:
            new_state["off_bars"] += 1
            if new_state["off_bars"] >= p.reset_bars:
                new_state["active"], new_state["off_bars"] = False, 0
        return new_state, events

    def _base(self, state: Mapping[str, Any], new_state: dict[str, Any], bar: Bar,
              ctx: RuleContext) -> tuple[float, datetime, str] | None:
        """Return the window's starting close, its time and the window's name; None while unknown."""
        window = self._window
        if isinstance(window, int):
            recent = ctx.recent
            if len(recent) < window:
                return None
            start = recent[-window]
            return start.close, start.time, self._label
        year_base, base_time = state.get("year_base"), state.get("base_time")
        if state.get("year") != bar.time.year:
            # A new year: the base is the previous year's last close. The very first year seen has none.
            year_base, base_time = state.get("prev_close"), state.get("prev_time")
            if state.get("year") is not None:
                new_state["active"], new_state["off_bars"] = False, 0  # a new YTD window starts fresh
        new_state["year"], new_state["year_base"], new_state["base_time"] = bar.time.year, year_base, base_time
        if year_base is None or base_time is None:
            return None
        # The base stays a year: its time is read once, not on every bar.
        read = self._base_time
        if read is None or read[0] != base_time:
            read = self._base_time = (base_time, parse_time(base_time))
        return float(year_base), read[1], self._label

    def _measure(self, base: tuple[float, datetime, str], bar: Bar, ctx: RuleContext, new_high: bool,
                 symbol: str) -> tuple[bool, float, float, float | None, int] | None:
        """Return whether price and flows diverge, the return %, the net flow, the outflow as % of assets and
        the days of flow data; None when the flow data does not cover the window."""
        p = self.params
        base_close, base_time, _ = base
        flows = ctx.flows
        if not flows:
            return None
        series = self._windows_of(symbol, flows)
        lag = series.lag
        times = series.times
        first_after = bisect.bisect_right(times, base_time)
        last_through = bisect.bisect_right(times, bar.time)
        # Unknown flows are not zero flows: without data near both ends of the window, stay silent.
        if first_after >= last_through:
            return None
        if times[first_after] > base_time + lag:
            return None  # the flow series starts after the window does
        if times[last_through - 1] < bar.time - lag:
            return None  # the flow series is stale
        if series.holes[last_through - 1] != series.holes[first_after]:
            return None  # a hole inside the window: those days' flows are unknown
        net = sum(series.amounts[first_after:last_through])
        return_pct = pct_change(base_close, bar.close)
        price_ok = (p.min_return_pct is not None and return_pct >= p.min_return_pct) or (p.on_new_high and new_high)
        outflow_pct = -net / ctx.assets_usd * 100 if ctx.assets_usd else None
        flow_ok = (p.min_outflow_usd is not None and net <= -p.min_outflow_usd) or (
            p.min_outflow_pct is not None and outflow_pct is not None and outflow_pct >= p.min_outflow_pct
        )
        return price_ok and flow_ok, return_pct, net, outflow_pct, last_through - first_after

    @staticmethod
    def _values(base: tuple[float, datetime, str], bar: Bar, new_high: bool,
                reading: tuple[bool, float, float, float | None, int]) -> dict[str, Any]:
        """Return the figures an alert carries (built for an alert only, not on every bar)."""
        base_close, base_time, label = base
        _, return_pct, net, outflow_pct, flow_days = reading
        return {
            "price": bar.close, "direction": "up", "window": label, "return_pct": return_pct,
            "base_close": base_close, "base_time": iso(base_time)[:10], "new_high": new_high,
            "net_flow_usd": net, "outflow_pct_of_assets": outflow_pct, "flow_days": flow_days,
        }

    def _windows_of(self, symbol: str, flows: Sequence[tuple[datetime, float]]) -> FlowWindows:
        """Return a symbol's flows indexed for windows (re-indexed only when the series is another one)."""
        held = self._indexed.get(symbol)
        if held is not None and held[0] is flows and len(held[1]) == len(flows):
            return held[1]
        series = held[1] if held is not None else FlowWindows(timedelta(days=self.params.max_flow_lag_days))
        series.update(flows)
        self._indexed[symbol] = (flows, series)
        return series

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
