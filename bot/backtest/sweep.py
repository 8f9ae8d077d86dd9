"""`riskon backtest --sweep rule.param=v1,v2,...`: the event study for every combination of signal definitions.

Most rule kinds read only their own symbol's bars and state, never another rule's events, so a rule's alerts depend
on its own parameters alone. The sweep therefore replays each swept rule once per value of its own parameters (in
parallel processes), and assembles every combination from those runs: 27 combinations of two rules with three
values each cost 3 + 3 replays of one rule, not 27 replays of all of them. A swept rule that reads other rules'
events (follow_through) makes every combination run whole, with all the configured rules.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from typing import Any

from pydantic import ValidationError

from alerts.events import AlertEvent
from alerts.study import DEFAULT_HORIZONS
from alerts.sweep import Sweep, SweepRow, corrected
from bot.backtest.history import BacktestError, History
from bot.backtest.replay import replay_rules
from bot.backtest.run import BacktestResult, study_alerts
from bot.backtest.words import study_label
from bot.config import Config
from bot.config.models import RuleConfig

# Kinds whose alerts depend only on their own parameters, bars and state (no other rule's events).
SELF_CONTAINED_KINDS = {"new_ath", "resistance_flip", "drawdown", "level_cross", "pct_move", "outflow_divergence"}
Grid = tuple[tuple[str, tuple[str, ...]], ...]


def parse_sweep(config: Config, specs: Sequence[str]) -> Grid:
    """Read '--sweep rule.param=v1,v2' options into (rule.param, values), checking each against the config."""
    grid: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        key, sep, values_text = spec.partition("=")
        rule_id, dot, param = key.strip().partition(".")
        values = tuple(v.strip() for v in values_text.split(",") if v.strip())
        if not sep or not dot or not param or not values:
            raise BacktestError(f"--sweep '{spec}': use RULE.PARAM=V1,V2,... e.g. smallcap_ath.rearm_pct=1,2,5")
        rule = next((r for r in config.rules if r.id == rule_id), None)
        if rule is None:
            raise BacktestError(f"--sweep '{spec}': no rule '{rule_id}' in the config "
                                f"(rules: {', '.join(r.id for r in config.rules)})")
        if not rule.enabled:
            raise BacktestError(f"--sweep '{spec}': rule '{rule_id}' is disabled in the config")
        for value in values:
            _with_param(rule, param, value, spec)
        if f"{rule_id}.{param}" in grid:
            raise BacktestError(f"--sweep '{spec}': {rule_id}.{param} is swept twice")
        grid[f"{rule_id}.{param}"] = values
    combinations = 1
    for values in grid.values():
        combinations *= len(values)
    if combinations > 1000:
        raise BacktestError(f"--sweep: {combinations} combinations; at most 1000")
    return tuple(grid.items())


def _with_param(rule: RuleConfig, param: str, value: str, spec: str = "") -> RuleConfig:
    """Return the rule with one parameter set from text, validated by the rule kind's own model."""
    from alerts.rules import RULES

    fields = RULES[rule.kind].Params.model_fields
    if param not in fields:
        raise BacktestError(f"--sweep '{spec}': {rule.kind} has no parameter '{param}' "
                            f"(it has: {', '.join(sorted(fields))})")
    import yaml

    try:
        parsed = yaml.safe_load(value)
        updated = RuleConfig.model_validate({**rule.model_dump(), param: parsed})
        RULES[rule.kind].Params(**updated.params)
    except (ValidationError, yaml.YAMLError) as exc:
        first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise BacktestError(f"--sweep '{spec}': {param}={value} is not valid for {rule.id}: {first}") from None
    return updated


def _apply(config: Config, settings: Sequence[tuple[str, str]], only: set[str] | None = None) -> Config:
    """Return the config with the given rule parameters set (and only the rules in `only`, when given)."""
    rules = []
    for rule in config.rules:
        if only is not None and rule.id not in only:
            continue
        for key, value in settings:
            rule_id, _, param = key.partition(".")
            if rule_id == rule.id:
                rule = _with_param(rule, param, value)
        rules.append(rule)
    return config.model_copy(update={"rules": rules})


_SHARED: dict[str, Any] = {}  # what each worker process replays over, set once before the workers fork


def replay_combination(config: Config, history: History, start: date | None, settings: Sequence[tuple[str, str]],
                       only: Sequence[str] | None = None) -> list[AlertEvent]:
    """Replay the history with one combination of swept parameters (only the rules in `only`, when given)."""
    narrowed = _apply(config, settings, set(only) if only is not None else None)
    bars = history.bars
    if only is not None:  # one self-contained rule: its own symbols are all it reads
        watched = {s for r in narrowed.rules for s in r.symbols}
        narrowed = narrowed.model_copy(update={"symbols": [s for s in narrowed.symbols if s.id in watched]})
        bars = {s: b for s, b in history.bars.items() if s in watched}
    return replay_rules(narrowed, bars, start, history.flows, history.truncated_since).alerts


def _replay(job: tuple[tuple[tuple[str, str], ...], tuple[str, ...] | None]) -> list[AlertEvent]:
    settings, only = job
    return replay_combination(_SHARED["config"], _SHARED["history"], _SHARED["start"], settings, only)


def _run_jobs(jobs: list[Any], workers: int) -> list[list[AlertEvent]]:
    if workers <= 1 or len(jobs) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [_replay(job) for job in jobs]
    # fork: the workers inherit the history instead of unpickling 46,000 bars each.
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_replay, jobs))


def run_sweep(config: Config, history: History, result: BacktestResult, grid: Grid,
              workers: int | None = None) -> Sweep:
    """Run the event study for every combination of the grid; one row per signal, follower and horizon."""
    started = time.perf_counter()
    workers = workers or os.cpu_count() or 1
    swept_rules = {key.partition(".")[0] for key, _ in grid}
    kinds = {r.id: r.kind for r in config.rules}
    by_rule = all(kinds[r] in SELF_CONTAINED_KINDS for r in swept_rules)
    keys = [key for key, _ in grid]
    combos = [tuple(zip(keys, values)) for values in itertools.product(*[values for _, values in grid])]
    _SHARED.update(config=config, history=history, start=result.start)
    alerts_of: dict[tuple[tuple[str, str], ...], list[AlertEvent]] = {}
    if by_rule:
        own = {rule: sorted({tuple(s for s in combo if s[0].startswith(rule + ".")) for combo in combos})
               for rule in swept_rules}
        jobs = [(settings, (rule,)) for rule in sorted(own) for settings in own[rule]]
        for (settings, _), alerts in zip(jobs, _run_jobs(jobs, workers)):
            alerts_of[settings] = alerts
    else:
        for combo, alerts in zip(combos, _run_jobs([(combo, None) for combo in combos], workers)):
            alerts_of[combo] = [a for a in alerts if a.rule_id in swept_rules]
    rows: list[SweepRow] = []
    seen: set[tuple] = set()
    for combo in combos:
        if by_rule:
            alerts = [a for rule in sorted(swept_rules)
                      for a in alerts_of[tuple(s for s in combo if s[0].startswith(rule + "."))]]
        else:
            alerts = alerts_of[combo]
        studies = study_alerts(config, sorted(alerts, key=lambda a: a.bar_time), result.closes, result.leaders,
                               result.followers, result.horizons or DEFAULT_HORIZONS, result.episode_gap_days)
        for study in studies:
            # A signal's figures depend only on its own rule's parameters when rules are self-contained: the same
            # test repeated under other rules' values is one test, shown once, counted once.
            own_settings = tuple(s for s in combo if s[0].startswith(study.rule_id + ".")) if by_rule else combo
            for row in study.rows:
                key = (own_settings, study_label(study), study.follower, row.horizon)
                if key in seen:
                    continue
                seen.add(key)
                t = row.test
                rows.append(SweepRow(own_settings, study_label(study), study.follower, row.horizon,
                                     t.n if t else row.signals.count, t.effect if t else None,
                                     t.p_value if t else None, None, t.verdict if t else "too few signals"))
    ranked, tests = corrected(rows)
    return Sweep(grid, ranked, tests, time.perf_counter() - started, min(workers, len(alerts_of)) if alerts_of else 1)

