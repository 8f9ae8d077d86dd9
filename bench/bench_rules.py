"""Rule evaluation cost per new bar, per rule kind, with 40 symbols loaded: flat in the history's length.

Run alone:  RISKON_MARKET_DATA=../shared/data/market /work/venv/bin/python bench/bench_rules.py
It steps every rule kind (with the parameters of the default config.yaml) over 40 symbols of 40 years
of daily bars, the way the engine does (state through JSON, a `lookback` window, the cycle's events, the
fund's flows known at that bar), and times the 120 bars that follow 1, 10 and 40 years of history; then the
engine's own read of a fund's flows after 1, 10 and 40 years.
The 40 symbols are synthesised from the real CSVs: each repeats a real series' daily moves (with its own
offset) back as far as 40 years needs, so their paths are realistic and all different.
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
import sys
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.bars import Bar
from alerts.evaluate import step_rule
from alerts.events import AlertEvent
from alerts.rules import RULES
from alerts.rules.base import Rule, RuleContext

SOURCES = ["RUT", "IWM", "IWN", "GSPC", "BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD"]
SYMBOLS = 40
YEARS = (1, 10, 40)
BARS_PER_YEAR = 252
MEASURED_BARS = 120
LEADERS = 4  # the first symbols lead (new_ath triggers follow_through on the others)

# The default config's parameters, one rule per kind (follow_through needs new_ath's events: it runs too).
KINDS: list[tuple[str, dict[str, Any]]] = [
    ("new_ath", {"rearm_pct": 1.0, "min_gap_days": 30}),
    ("resistance_flip", {"detect": "prior_ath", "min_level_age": 60, "alert_failed": True}),
    ("resistance_flip", {"detect": "swing_highs", "lookback": 250, "swing_strength": 5}),
    ("outflow_divergence", {"window": 20, "min_return_pct": 5.0, "min_outflow_usd": 1e9}),
    ("outflow_divergence", {"window": "ytd", "min_return_pct": 8.0, "min_outflow_usd": 2e9}),
    ("follow_through", {"leaders": [], "trigger_rules": ["leader_ath"], "window_days": 30, "alert_on_expiry": True}),
    ("level_cross", {"levels": [100.0], "direction": "either", "rearm_pct": 3.0}),
    ("pct_move", {"bars": 7, "min_pct": 20.0}),
    ("drawdown", {"thresholds_pct": [20, 30]}),
]


def load_source(folder: Path, stem: str) -> list[tuple[float, float, float, float]]:
    """Return a real series as (daily return, open/close, high/close, low/close) per bar."""
    rows = list(csv.DictReader((folder / f"{stem}.csv").open()))
    out, previous = [], None
    for row in rows:
        o, h, l, c = (float(row[k]) for k in ("open", "high", "low", "close"))
        if previous:
            out.append((c / previous, o / c, h / c, l / c))
        previous = c
    return out


def synthesise(moves: list[tuple[float, float, float, float]], offset: int, length: int, end: datetime) -> list[Bar]:
    """Build `length` daily bars ending at `end` from a real series' moves, started `offset` moves in."""
    bars, close = [], 100.0
    start = end - timedelta(days=length - 1)
    for i in range(length):
        ret, o, h, l = moves[(offset + i) % len(moves)]
        close *= ret
        op = close * o
        high, low = max(close * h, op, close), min(close * l, op, close)
        bars.append(Bar(start + timedelta(days=i), op, high, low, close))
    return bars


def flows_for(bars: Sequence[Bar]) -> list[tuple[datetime, float]]:
    """Invent a daily flow per bar (redemptions into rallies, now and then) — only its length matters here."""
    return [(b.time, -4e8 * math.sin(i / 17.0)) for i, b in enumerate(bars)]


def build_market(folder: Path, symbols: int, years: int) -> dict[str, list[Bar]]:
    """Synthesise `symbols` series of `years` years of daily bars from the real CSVs."""
    length = years * BARS_PER_YEAR + MEASURED_BARS
    end = datetime(2026, 9, 25, tzinfo=timezone.utc)
    sources = [load_source(folder, stem) for stem in SOURCES if (folder / f"{stem}.csv").exists()]
    market = {}
    for n in range(symbols):
        moves = sources[n % len(sources)]
        market[f"S{n:02d}"] = synthesise(moves, offset=(n // len(sources)) * 997, length=length, end=end)
    return market


def make_rules(symbols: Sequence[str]) -> list[tuple[str, Rule, Sequence[str]]]:
    """Build one rule per benchmarked kind; a new_ath on the leaders feeds follow_through."""
    leaders, followers = list(symbols[:LEADERS]), list(symbols[LEADERS:])
    built: list[tuple[str, Rule, Sequence[str]]] = [
        ("(leader new_ath)", RULES["new_ath"]("leader_ath", RULES["new_ath"].Params(min_gap_days=30)), leaders)
    ]
    for index, (kind, params) in enumerate(KINDS):
        if kind == "follow_through":
            params = {**params, "leaders": leaders}
        cls = RULES[kind]
        label = kind + ("" if kind not in ("resistance_flip", "outflow_divergence") else
                        f" ({params.get('detect', params.get('window'))})")
        built.append((label, cls(f"r{index}", cls.Params(**params)), followers if kind == "follow_through" else symbols))
    return built


def run(market: dict[str, list[Bar]], checkpoints: Sequence[int]) -> dict[tuple[str, int], float]:
    """Step every rule over every symbol in time order; return median microseconds per symbol-bar at each checkpoint."""
    symbols = list(market)
    rules = make_rules(symbols)
    size = max(rule.lookback for _, rule, _ in rules) + 1
    windows = {s: deque(maxlen=size) for s in symbols}
    states: dict[tuple[str, str], Any] = {}
    flows = {s: flows_for(market[s]) for s in symbols}
    recent_events: deque[AlertEvent] = deque(maxlen=1000)  # as the engine keeps them across polls
    length = len(next(iter(market.values())))
    timed: dict[tuple[str, int], list[float]] = {}
    for i in range(length):
        checkpoint = next((c for c in checkpoints if c <= i < c + MEASURED_BARS), None)
        # The flows known at this bar: N years of history has N years of flows (outside the timed part; the
        # engine's own read of them is timed apart, in flow_read_cost).
        known = {s: flows[s][:i + 1] for s in symbols} if checkpoint is not None else flows
        cycle: list[AlertEvent] = []
        spent = {label: 0 for label, _, _ in rules}
        for symbol in symbols:
            bar = market[symbol][i]
            window = windows[symbol]
            for label, rule, watched in rules:
                if symbol not in watched:
                    continue
                started = time.perf_counter_ns()
                ctx = RuleContext(
                    recent=tuple(window)[-rule.lookback:] if rule.lookback else (),
                    cycle_events=tuple(cycle), recent_events=tuple(recent_events), flows=known[symbol],
                    bars_of=lambda other: tuple(windows.get(other, ())),
                )
                key = (rule.rule_id, symbol)
                state, fired = step_rule(rule, states.get(key), symbol, bar, ctx)
                if checkpoint is not None:
                    # Timed bars pay what the engine pays: the state saved as JSON (and read back on restart).
                    state = json.loads(json.dumps(state))
                states[key] = state
                spent[label] += time.perf_counter_ns() - started
                cycle.extend(fired)
                recent_events.extend(fired)
            window.append(bar)
        if checkpoint is not None:
            for label, _, watched in rules:
                timed.setdefault((label, checkpoint), []).append(spent[label] / 1000 / len(watched))
    return {key: statistics.median(values) for key, values in timed.items()}


def flow_read_cost(years: int, reads: int = 30) -> float:
    """Return the median milliseconds of the engine's read of one fund's flows (Store.load_flows) after N years."""
    from storage import Store

    store = Store.memory()
    end = datetime(2026, 9, 25, tzinfo=timezone.utc)
    days = [end - timedelta(days=i) for i in range(years * BARS_PER_YEAR)][::-1]
    store.upsert_flows("IWM", [(d, -4e8 * math.sin(i / 17.0), None, None, "bench") for i, d in enumerate(days)], end)
    times = []
    for _ in range(reads):
        started = time.perf_counter()
        store.load_flows("IWM")
        times.append(time.perf_counter() - started)
    store.close()
    return statistics.median(times) * 1000


def main(symbols: int = SYMBOLS, years: Sequence[int] = YEARS) -> list[tuple[str, str]]:
    """Run the benchmark and return (figure name, value text) pairs."""
    folder = os.environ.get("RISKON_MARKET_DATA")
    if not folder or not Path(folder).is_dir():
        return [("bench_rules", "skipped: set RISKON_MARKET_DATA to the market data folder")]
    market = build_market(Path(folder), symbols, max(years))
    checkpoints = [y * BARS_PER_YEAR for y in years]
    medians = run(market, checkpoints)
    labels = sorted({label for label, _ in medians}, key=lambda l: [k for k, _ in KINDS].index(l.split(" ")[0])
                    if not l.startswith("(") else -1)
    figures = []
    for label in labels:
        per_year = [medians[(label, c)] for c in checkpoints]
        cells = ", ".join(f"{y}y {v:.1f} µs" for y, v in zip(years, per_year))
        figures.append((f"rule cost {label}: per symbol-bar", cells))
        figures.append((f"rule cost {label}: {max(years)}y / {min(years)}y", f"{per_year[-1] / per_year[0]:.2f}x"))
    reads = [flow_read_cost(y) for y in years]
    figures.append(("engine's flow read (Store.load_flows, once per batch per fund): per read",
                    ", ".join(f"{y}y {ms:.2f} ms" for y, ms in zip(years, reads))))
    return figures


if __name__ == "__main__":
    started = time.perf_counter()
    rows = main()
    width = max(len(name) for name, _ in rows)
    print(f"Rule cost per new daily bar ({SYMBOLS} symbols, median of {MEASURED_BARS} bars after N years of history)")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(f"({time.perf_counter() - started:.0f} s)")
