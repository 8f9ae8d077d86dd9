"""The whole backtest: the rules over history, then the event study and co-movement of leaders and followers."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from alerts.closes import Closes
from alerts.comovement import DEFAULT_WINDOWS, CoMovement, LeadLag, comovement, lead_lag
from alerts.events import AlertEvent
from alerts.study import DEFAULT_HORIZONS, Signal, Study, closes_from_bars, event_study, signal_episodes
from bot.backtest.claims import Claim, check_claims
from bot.backtest.history import BacktestError, History
from bot.backtest.replay import replay_rules
from bot.config import Config

if TYPE_CHECKING:  # the sweep is loaded only by --sweep
    from alerts.sweep import Sweep

FOLLOWER_CLASSES = ("crypto", "composite")
FLIP_KIND = "resistance_flip"  # a follower's own flip: old resistance turned support
FLOW_KIND = "outflow_divergence"  # the rule kind that reads ETF flows


@dataclass
class SymbolSpan:
    """What history a symbol had in the backtest."""

    symbol: str
    role: str  # leader | follower | other
    bars: int
    first: date
    last: date


@dataclass
class BacktestResult:
    """Everything one backtest found: alerts, the event study and the co-movement, with its inputs."""

    config_path: str
    source: str
    start: date | None
    end: date | None
    horizons: tuple[int, ...]
    episode_gap_days: int
    spans: list[SymbolSpan]
    alerts: list[AlertEvent]
    signals: list[Signal]
    studies: list[Study]
    comovements: list[CoMovement]
    problems: list[str]
    seconds: float
    closes: dict[str, Closes] = field(repr=False, default_factory=dict)
    leaders: tuple[str, ...] = ()
    followers: tuple[str, ...] = ()
    rules_seconds: float = 0.0  # of `seconds`, the time the rules took
    lead_lags: list[LeadLag] = field(default_factory=list)
    coverage: list[RuleCoverage] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    flows: dict[str, list[tuple[datetime, float]]] = field(repr=False, default_factory=dict)
    sweep: Sweep | None = None
    rules_cpu_seconds: float = 0.0  # the CPU time the rules took (what a loaded machine stretches least)

    @property
    def bar_count(self) -> int:
        """Return how many bars the rules stepped over."""
        return sum(s.bars for s in self.spans)


def choose_roles(config: Config, available: Iterable[str], leaders: Sequence[str] | None,
                 followers: Sequence[str] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Pick leaders and followers: given ones, else crypto and composites follow and the rest lead."""
    available = [s.id for s in config.symbols if s.id in set(available)]
    known = {s.id for s in config.symbols}
    for name in list(leaders or []) + list(followers or []):
        if name not in known:
            raise BacktestError(f"unknown symbol '{name}' (configured: {', '.join(sorted(known))})")
    classes = {s.id: s.asset_class for s in config.symbols}
    members = composite_members(config)
    # By default the followers are the crypto symbols a trader watches (BTC, ETH, ALTS), not ALTS's members.
    default_followers = [s for s in available if classes[s] in FOLLOWER_CLASSES and s not in members]
    chosen_followers = tuple(f for f in (followers or default_followers) if f in available)
    default_leaders = [s for s in available if classes[s] not in FOLLOWER_CLASSES and s not in members]
    chosen_leaders = tuple(l for l in (leaders or default_leaders) if l in available)
    return chosen_leaders, chosen_followers


def _main_kind(config: Config, rule_id: str) -> str:
    rule = next((r for r in config.rules if r.id == rule_id), None)
    return rule.kind if rule else ""


def composite_members(config: Config) -> set[str]:
    """Return the symbols that are members of a configured composite index (e.g. ALTS's coins)."""
    members: set[str] = set()
    for feed in config.feeds.values():
        if feed.kind == "composite":
            for index in (feed.settings.get("indexes") or {}).values():
                if isinstance(index, Mapping):
                    members.update(str(m) for m in index.get("members") or ())
    return members


def backtest(
    config: Config,
    history: History,
    *,
    start: date | None = None,
    end: date | None = None,
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    episode_gap_days: int = 30,
    leaders: Sequence[str] | None = None,
    followers: Sequence[str] | None = None,
    windows: Sequence[int] = DEFAULT_WINDOWS,
) -> BacktestResult:
    """Run the rules over the history, then study what followers did after the leaders' signals."""
    started, started_cpu = time.perf_counter(), time.process_time()
    if not history.bars:
        why = "".join(f"\n  {problem}" for problem in history.problems[:8])
        more = f"\n  … and {len(history.problems) - 8} more" if len(history.problems) > 8 else ""
        raise BacktestError("no history for any configured symbol"
                            + (f" in {history.source}" if history.source else "") + why + more)
    if not config.build_rules():
        raise BacktestError("no enabled rules in the config: nothing to backtest")
    run = replay_rules(config, history.bars, start, history.flows, history.truncated_since)
    rules_seconds, rules_cpu_seconds = time.perf_counter() - started, time.process_time() - started_cpu
    alerts = run.alerts
    all_bars = {**history.bars, **run.computed}
    all_bars = {s.id: all_bars[s.id] for s in config.symbols if s.id in all_bars}
    closes = {symbol: closes_from_bars(bars) for symbol, bars in all_bars.items()}
    lead, follow = choose_roles(config, all_bars, leaders, followers)
    members = composite_members(config)
    studies = study_alerts(config, alerts, closes, lead, follow, horizons, episode_gap_days)
    signals = signal_episodes([a for a in alerts if a.symbol in lead], episode_gap_days)
    moves = [comovement(l, closes[l], f, closes[f], windows) for l in lead for f in follow]
    lead_lags = [lead_lag(l, closes[l], f, closes[f], period) for l in lead for f in follow for period in ("day", "week")]
    spans = [
        SymbolSpan(s.id, "leader" if s.id in lead else "follower" if s.id in follow else
                   "composite member" if s.id in members else "not studied",
                   len(all_bars[s.id]), all_bars[s.id][0].time.date(), all_bars[s.id][-1].time.date())
        for s in config.symbols if s.id in all_bars
    ]
    result = BacktestResult(
        config.source_path or "config", history.source, start, end, tuple(sorted(set(int(h) for h in horizons))),
        episode_gap_days, spans, alerts, signals, studies, moves, list(history.problems),
        0.0, closes, lead, follow, rules_seconds, lead_lags, rule_coverage(config, history, all_bars, alerts),
        flows={fund: list(items) for fund, items in history.flows.items()},
    )
    result.rules_cpu_seconds = rules_cpu_seconds
    result.claims = check_claims(config, result)
    result.seconds = time.perf_counter() - started
    return result


def study_alerts(config: Config, alerts: Sequence[AlertEvent], closes: Mapping[str, Closes],
                 lead: Sequence[str], follow: Sequence[str], horizons: Sequence[int] = DEFAULT_HORIZONS,
                 episode_gap_days: int = 30) -> list[Study]:
    """Fold the leaders' alerts into signals and study each against every follower, in config order."""
    signals = signal_episodes([a for a in alerts if a.symbol in lead], episode_gap_days)
    flip_watched = {symbol for rule in config.rules if rule.enabled and rule.kind == FLIP_KIND for symbol in rule.symbols}
    follower_flips = {f: [a.bar_time.date() for a in alerts if a.symbol == f and a.kind == FLIP_KIND]
                      for f in follow if f in flip_watched}
    studies = event_study(signals, closes, {f: closes[f] for f in follow}, horizons, follower_flips)
    symbol_order = {s.id: i for i, s in enumerate(config.symbols)}
    rule_order = {r.id: i for i, r in enumerate(config.rules)}
    studies.sort(key=lambda s: (symbol_order.get(s.leader, 0), rule_order.get(s.rule_id, 0),
                                s.kind != _main_kind(config, s.rule_id)))
    return studies


@dataclass(frozen=True)
class RuleCoverage:
    """Whether a rule could run over this history: on which symbols, and why not on the others."""

    rule_id: str
    kind: str
    evaluated: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (symbol, why)
    alerts: int


def _flow_runs(flows: Sequence[tuple[datetime, float]], gap_days: int = 30) -> list[tuple[date, date]]:
    """Return the (first, last) days of each run of flow records no more than `gap_days` apart."""
    days = sorted(when.date() for when, _ in flows)
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and (day - runs[-1][1]).days <= gap_days:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def rule_coverage(config: Config, history: History, bars: Mapping[str, Sequence[object]],
                  alerts: Sequence[AlertEvent]) -> list[RuleCoverage]:
    """Say for each enabled rule which of its symbols it was evaluated on, and why not on the rest."""
    out = []
    for rule in config.rules:
        if not rule.enabled:
            continue
        evaluated, skipped = [], []
        for symbol in rule.symbols:
            if symbol not in bars:
                skipped.append((symbol, "no price history in this data"))
            elif rule.kind == FLOW_KIND and not history.flows.get(symbol):
                skipped.append((symbol, "no ETF flow history in this data (the rule needs flows)"))
            elif rule.kind == FLOW_KIND:
                evaluated.append(symbol)
                runs = _flow_runs(history.flows[symbol])
                skipped.append((symbol, "flows known only " + ", ".join(f"{a} → {b}" for a, b in runs)
                                + "; elsewhere the rule cannot say anything"))
            else:
                evaluated.append(symbol)
        count = sum(1 for a in alerts if a.rule_id == rule.id)
        out.append(RuleCoverage(rule.id, rule.kind, tuple(evaluated), tuple(skipped), count))
    return out
