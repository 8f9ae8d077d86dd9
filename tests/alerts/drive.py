"""Drive rules over bar lists the way the engine does: state carried, a lookback window, JSON round trips."""

from __future__ import annotations

import csv
import json
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence

from alerts.bars import Bar
from alerts.evaluate import step_rule
from alerts.events import AlertEvent
from alerts.rules import RULES
from alerts.rules.base import Rule, RuleContext
from tests.market import market_folder as market_data

START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def make_rule(kind: str, rule_id: str = "r", **params: Any) -> Rule:
    """Build a rule of a registered kind with validated parameters."""
    cls = RULES[kind]
    return cls(rule_id, cls.Params(**params))


def bars_from(rows: Sequence[Any], start: datetime = START, step_days: int = 1) -> list[Bar]:
    """Build daily bars from closes or (low, high, close) / (open, high, low, close) tuples."""
    out = []
    for i, row in enumerate(rows):
        when = start + timedelta(days=i * step_days)
        if isinstance(row, (int, float)):
            out.append(Bar(when, row, row, row, row))
        elif len(row) == 3:
            low, high, close = row
            out.append(Bar(when, close, max(high, close), min(low, close), close))
        else:
            o, h, l, c = row
            out.append(Bar(when, o, h, l, c))
    return out


@dataclass
class Run:
    """The events and final state of driving one rule over one symbol's bars."""

    events: list[AlertEvent]
    state: Mapping[str, Any] | None


def drive(
    rule: Rule, bars: Iterable[Bar], symbol: str = "X", state: Mapping[str, Any] | None = None,
    history: Sequence[Bar] = (), context: Callable[[Bar], dict[str, Any]] | None = None,
    json_each_step: bool = True,
) -> Run:
    """Step a rule over bars like the engine, round-tripping the state through JSON at every step."""
    window: deque[Bar] = deque(history[-rule.lookback:] if rule.lookback else (), maxlen=max(rule.lookback, 1))
    events: list[AlertEvent] = []
    for bar in bars:
        extra = context(bar) if context else {}
        ctx = RuleContext(recent=tuple(window) if rule.lookback else (), **extra)
        state, fired = step_rule(rule, state, symbol, bar, ctx)
        if json_each_step:
            state = json.loads(json.dumps(state))
        events.extend(fired)
        if rule.lookback:
            window.append(bar)
    return Run(events, state)


def drive_with_restart(rule: Rule, bars: Sequence[Bar], cut: int, **kwargs: Any) -> list[AlertEvent]:
    """Run the first `cut` bars, save the state as JSON text, rebuild the rule, and run the rest."""
    first = drive(rule, bars[:cut], **kwargs)
    saved = json.dumps(first.state)
    fresh = type(rule)(rule.rule_id, rule.params)
    second = drive(fresh, bars[cut:], state=json.loads(saved), history=bars[:cut], **kwargs)
    return first.events + second.events


def load_csv(name: str) -> list[Bar]:
    """Load a daily CSV of the real market data as final bars."""
    path = market_data() / f"{name}.csv"
    bars = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            when = datetime.strptime(row["date"], "%Y-%m-%d").replace(tzinfo=timezone.utc)
            bars.append(Bar(when, float(row["open"]), float(row["high"]), float(row["low"]), float(row["close"]),
                            float(row.get("volume") or 0)))
    return bars


def day(event: AlertEvent) -> str:
    """Return an event's bar date as text."""
    return event.bar_time.date().isoformat()


def drive_market(
    bindings: Sequence[tuple[Rule, Sequence[str]]], series: Mapping[str, Sequence[Bar]],
    states: dict[tuple[str, str], Any] | None = None, until: datetime | None = None,
    after: datetime | None = None, flows: Mapping[str, Sequence[tuple[datetime, float]]] | None = None,
) -> tuple[list[AlertEvent], dict[tuple[str, str], Any]]:
    """Replay several symbols day by day like the engine: one cycle per date, symbols in the given order.

    Returns every event and the states (JSON round-tripped), so a run can be cut and resumed.
    """
    states = {} if states is None else dict(states)
    order = list(series)
    windows: dict[str, deque[Bar]] = {}
    size = max([rule.lookback for rule, _ in bindings] + [1]) + 1
    by_day: dict[datetime, list[tuple[int, str, Bar]]] = {}
    for position, symbol in enumerate(order):
        for bar in series[symbol]:
            by_day.setdefault(bar.time, []).append((position, symbol, bar))
    events: list[AlertEvent] = []
    for when in sorted(by_day):
        if after is not None and when <= after:
            for _, symbol, bar in sorted(by_day[when], key=lambda item: item[0]):
                windows.setdefault(symbol, deque(maxlen=size)).append(bar)
            continue
        if until is not None and when > until:
            break
        cycle: list[AlertEvent] = []
        for _, symbol, bar in sorted(by_day[when], key=lambda item: item[0]):
            window = windows.setdefault(symbol, deque(maxlen=size))
            for rule, symbols in bindings:
                if symbol not in symbols:
                    continue
                ctx = RuleContext(recent=tuple(window)[-rule.lookback:] if rule.lookback else (),
                                  cycle_events=tuple(cycle),
                                  bars_of=lambda other: tuple(windows.get(other, ())),
                                  flows=(flows or {}).get(symbol, ()))
                state, fired = step_rule(rule, states.get((rule.rule_id, symbol)), symbol, bar, ctx)
                states[(rule.rule_id, symbol)] = json.loads(json.dumps(state))
                cycle.extend(fired)
            window.append(bar)
        events.extend(cycle)
    return events, states
