"""`riskon backtest`: the configured rules over history, the event study and co-movement, as tables and a report.

The rules run through the live bot's own Engine (bot/engine.py) over an in-memory store, fed one market day
per batch exactly as `riskon replay` feeds it: same rule code (alerts/evaluate.step_rule), same ordering
(time, then config symbol order), same cross-asset context and notify policy. No second implementation.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import csv
import html
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from alerts.bars import Bar
from alerts.errors import RiskonError
from alerts.events import AlertEvent
from alerts.messages import format_alert
from alerts.study import (
    DEFAULT_HORIZONS,
    DEFAULT_WINDOWS,
    CoMovement,
    Signal,
    Study,
    closes_from_bars,
    comovement,
    event_study,
    follower_paths,
    signal_episodes,
)
from bot.config import Config, load_config

log = logging.getLogger(__name__)

FOLLOWER_CLASSES = ("crypto", "composite")
FLIP_KIND = "resistance_flip"  # a follower's own flip: old resistance turned support
LIVE_FETCH_ROUNDS = 50  # a live feed serves its whole history in a few pages; more rounds means it is stuck
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class BacktestError(RiskonError):
    """Signal that a backtest cannot run (no data, no rules, bad options)."""


# --- history ---------------------------------------------------------------------------------------


@dataclass
class History:
    """Final daily bars per symbol, and what was wrong with the input (each problem named)."""

    bars: dict[str, list[Bar]]
    problems: list[str] = field(default_factory=list)
    source: str = ""
    flows: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)  # fund -> (day, net flow USD)


def _cut(bars: Sequence[Bar], end: date | None) -> list[Bar]:
    if end is None:
        return [b for b in bars if b.final]
    limit = datetime(end.year, end.month, end.day, tzinfo=timezone.utc) + timedelta(days=1)
    return [b for b in bars if b.final and b.time < limit]


def load_csv_history(config: Config, folder: str | Path, end: date | None = None) -> History:
    """Read each configured symbol's CSV (file stem = its `csv` name) from a folder, up to `end`."""
    from bot.feeds.replay import ReplayError, read_daily_csv

    folder = Path(folder)
    if not folder.is_dir():
        raise BacktestError(f"--data {folder}: no such folder")
    history = History({}, source=str(folder))
    computed = _composite_feeds(config)
    for symbol in config.symbols:
        if symbol.feed in computed:
            continue  # an index made from other symbols: its own feed computes it as the rules run, as live
        path = folder / f"{symbol.csv_stem}.csv"
        if not path.exists():
            history.problems.append(f"{symbol.id}: no file {path.name} in {folder}; left out of the backtest")
            continue
        try:
            bars, problems = read_daily_csv(path)
        except (ReplayError, OSError, UnicodeDecodeError, csv.Error) as exc:
            history.problems.append(f"{symbol.id}: {exc}; left out of the backtest")
            continue
        history.problems.extend(f"{symbol.id}: {p} (row skipped)" for p in problems[:20])
        if len(problems) > 20:
            history.problems.append(f"{symbol.id}: {len(problems) - 20} more bad rows skipped")
        bars = _cut(bars, end)
        if bars:
            history.bars[symbol.id] = bars
        else:
            history.problems.append(f"{symbol.id}: {path.name} has no usable rows" + (f" up to {end}" if end else ""))
    return history


def _composite_feeds(config: Config) -> set[str]:
    return {name for name, feed in config.feeds.items() if feed.kind == "composite"}


async def fetch_live_history(config: Config, cache_path: str | Path, end: date | None = None,
                             now: datetime | None = None) -> History:
    """Fetch every symbol's history through its configured feeds into a bars cache, then read it back."""
    from bot.feeds import FEEDS
    from storage import Store

    now = now or datetime.now(timezone.utc)
    cache = Store.open(cache_path)
    history = History({}, source=f"live feeds, cached in {cache_path}")
    try:
        for name, feed_config in config.feeds.items():
            served = [s for s in config.symbols if s.feed == name or s.history_feed == name]
            if not served:
                continue
            kind = FEEDS.get(feed_config.kind)
            if kind is None:
                history.problems.append(f"feed {name}: unknown kind {feed_config.kind!r}")
                continue
            try:
                feed = kind.build(name, kind.Settings(**feed_config.settings), served, cache)
            except Exception as exc:  # one feed that cannot be built never stops the others
                history.problems.append(f"feed {name}: cannot be set up: {exc}")
                continue
            try:
                await _drain_feed(feed, [s.id for s in served], cache, now, history)
            finally:
                try:
                    await feed.close()
                except Exception as exc:
                    log.warning("feed %s did not close cleanly: %s", name, exc)
        limit = _utc_day(end) + timedelta(days=1) if end else None
        for symbol in config.symbols:
            bars = _cut(cache.load_bars(symbol.id), end)
            load_flows = getattr(cache, "load_flows", None)  # the flows table arrives with the flows feed
            flows = [(t, f) for t, f in (load_flows(symbol.id) if load_flows else []) if limit is None or t < limit]
            if flows:
                history.flows[symbol.id] = flows
            if bars:
                history.bars[symbol.id] = bars
            else:
                history.problems.append(f"{symbol.id}: no history from feed {symbol.feed}; left out of the backtest")
    finally:
        cache.close()
    return history


async def _drain_feed(feed: Any, symbols: list[str], cache: Any, now: datetime, history: History) -> None:
    """Poll a feed until it has served everything it has (a replay feed serves a day per poll)."""
    rounds = 0
    limit = LIVE_FETCH_ROUNDS
    if hasattr(feed, "exhausted") and hasattr(feed, "day_count"):
        limit = feed.day_count + 2  # one market day per fetch
    while rounds < limit:
        rounds += 1
        since = {s: cache.last_bar_time(s) for s in symbols}
        try:
            result = await feed.fetch(symbols, since, now)
        except Exception as exc:
            history.problems.append(f"feed {feed.name}: {type(exc).__name__}: {exc}")
            return
        for symbol, error in result.errors.items():
            history.problems.append(f"{symbol}: feed {feed.name}: {error}")
        for symbol, started in result.truncated_since.items():
            history.problems.append(f"{symbol}: feed {feed.name} serves history only since {started:%Y-%m-%d}; "
                                    "highs before it are unknown")
        new = sum(cache.upsert_bars(symbol, bars) for symbol, bars in result.bars.items())
        if getattr(feed, "exhausted", False) or (new == 0 and not hasattr(feed, "exhausted")):
            return


# --- rules over history ------------------------------------------------------------------------


def _utc_day(day: date | None) -> datetime | None:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) if day else None


@dataclass
class RuleRun:
    """What the rules did over history: the alerts, and the bars of computed symbols (composites) as live."""

    alerts: list[AlertEvent]
    computed: dict[str, list[Bar]] = field(default_factory=dict)


def run_rules(
    config: Config,
    bars_by_symbol: Mapping[str, Sequence[Bar]],
    start: date | None = None,
    flows: Mapping[str, Sequence[tuple[datetime, float]]] | None = None,
) -> list[AlertEvent]:
    """Run the configured rules over history through the live Engine, one market day per batch; return alerts."""
    return replay_rules(config, bars_by_symbol, start, flows).alerts


def replay_rules(
    config: Config,
    bars_by_symbol: Mapping[str, Sequence[Bar]],
    start: date | None = None,
    flows: Mapping[str, Sequence[tuple[datetime, float]]] | None = None,
) -> RuleRun:
    """Feed history to the live Engine as `riskon replay` does: each market day's bars in one batch, then each
    computed feed (composites) polled over what is stored, its new bars in a batch of their own."""
    return asyncio.run(replay_rules_async(config, bars_by_symbol, start, flows))


async def replay_rules_async(
    config: Config,
    bars_by_symbol: Mapping[str, Sequence[Bar]],
    start: date | None = None,
    flows: Mapping[str, Sequence[tuple[datetime, float]]] | None = None,
) -> RuleRun:
    """Do what `replay_rules` does, inside a running event loop."""
    from bot.engine import Engine
    from bot.feeds import FEEDS
    from storage import Store

    flows = {fund: sorted(items) for fund, items in (flows or {}).items()}
    flow_times = {fund: [t for t, _ in items] for fund, items in flows.items()}
    today: list[datetime] = [EPOCH]

    def flows_known(fund: str) -> Sequence[tuple[datetime, float]]:
        # Only the flows published by the bar being evaluated: no peeking at later days.
        if fund not in flows:
            return ()
        return flows[fund][: bisect.bisect_right(flow_times[fund], today[0])]

    store = Store.memory()
    computed_feeds: list[tuple[Any, list[str]]] = []
    try:
        engine = Engine(store, config.build_rules(), [s.id for s in config.symbols], flows_of=flows_known)
        for name in sorted(_composite_feeds(config)):
            served = [s for s in config.symbols if s.feed == name]
            kind = FEEDS[config.feeds[name].kind]
            feed = kind.build(name, kind.Settings(**config.feeds[name].settings), served, store)
            computed_feeds.append((feed, [s.id for s in served]))
        computed_ids = {symbol for _, symbols in computed_feeds for symbol in symbols}
        # Bars closing before `start` warm the rules up; their events are history, not alerts.
        live_since = _utc_day(start) or EPOCH
        days: dict[datetime, dict[str, list[Bar]]] = {}
        for symbol, bars in bars_by_symbol.items():
            if symbol in computed_ids:
                continue  # computed below from its members, day by day, as the live feed does
            for bar in bars:
                if bar.final:
                    days.setdefault(bar.time, {}).setdefault(symbol, []).append(bar)
        alerts: list[AlertEvent] = []
        for moment in sorted(days):
            batch = days[moment]
            now = max(b.close_time for bars in batch.values() for b in bars)
            today[0] = moment
            report = engine.ingest(batch, now, live_since)
            alerts.extend(event for _, event in report.alerts)
            for feed, symbols in computed_feeds:
                since = {s: (engine.window(s)[-1].time if engine.window(s) else None) for s in symbols}
                result = await feed.fetch(symbols, since, now)
                if result.bars:
                    report = engine.ingest(result.bars, now, live_since)
                    alerts.extend(event for _, event in report.alerts)
        computed = {symbol: store.load_bars(symbol) for symbol in computed_ids}
        return RuleRun(alerts, {symbol: bars for symbol, bars in computed.items() if bars})
    finally:
        for feed, _ in computed_feeds:
            await feed.close()
        store.close()


# --- the whole backtest ----------------------------------------------------------------------------


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
    closes: dict[str, pd.Series] = field(repr=False, default_factory=dict)
    leaders: tuple[str, ...] = ()
    followers: tuple[str, ...] = ()
    rules_seconds: float = 0.0  # of `seconds`, the time the rules took

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
    started = time.perf_counter()
    if not history.bars:
        why = "".join(f"\n  {problem}" for problem in history.problems[:8])
        more = f"\n  … and {len(history.problems) - 8} more" if len(history.problems) > 8 else ""
        raise BacktestError("no history for any configured symbol"
                            + (f" in {history.source}" if history.source else "") + why + more)
    if not config.build_rules():
        raise BacktestError("no enabled rules in the config: nothing to backtest")
    run = replay_rules(config, history.bars, start, history.flows)
    rules_seconds = time.perf_counter() - started
    alerts = run.alerts
    all_bars = {**history.bars, **run.computed}
    all_bars = {s.id: all_bars[s.id] for s in config.symbols if s.id in all_bars}
    closes = {symbol: closes_from_bars(bars) for symbol, bars in all_bars.items()}
    lead, follow = choose_roles(config, all_bars, leaders, followers)
    members = composite_members(config)
    leader_alerts = [a for a in alerts if a.symbol in lead]
    signals = signal_episodes(leader_alerts, episode_gap_days)
    flip_watched = {symbol for rule in config.rules if rule.enabled and rule.kind == FLIP_KIND for symbol in rule.symbols}
    follower_flips = {f: [a.bar_time.date() for a in alerts if a.symbol == f and a.kind == FLIP_KIND]
                      for f in follow if f in flip_watched}
    studies = event_study(signals, closes, {f: closes[f] for f in follow}, horizons, follower_flips)
    symbol_order = {s.id: i for i, s in enumerate(config.symbols)}
    rule_order = {r.id: i for i, r in enumerate(config.rules)}
    studies.sort(key=lambda s: (symbol_order.get(s.leader, 0), rule_order.get(s.rule_id, 0), s.kind != _main_kind(config, s.rule_id)))
    moves = [comovement(l, closes[l], f, closes[f], windows) for l in lead for f in follow]
    spans = [
        SymbolSpan(s.id, "leader" if s.id in lead else "follower" if s.id in follow else
                   "composite member" if s.id in members else "not studied",
                   len(all_bars[s.id]), all_bars[s.id][0].time.date(), all_bars[s.id][-1].time.date())
        for s in config.symbols if s.id in all_bars
    ]
    return BacktestResult(
        config.source_path or "config", history.source, start, end, tuple(sorted(set(int(h) for h in horizons))),
        episode_gap_days, spans, alerts, signals, studies, moves, list(history.problems),
        time.perf_counter() - started, closes, lead, follow, rules_seconds,
    )


# --- words and numbers -----------------------------------------------------------------------------


def pct(value: float | None, signed: bool = True) -> str:
    """Format a percentage for a table; a dash when unknown."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:+.1f}%" if signed else f"{value:.0f}%"


def corr(value: float | None) -> str:
    """Format a correlation; a dash when unknown."""
    return "–" if value is None else f"{value:+.2f}"


def what_happened(event: AlertEvent) -> tuple[str, str]:
    """Return an alert's headline (without emoji and symbol) and its second line of figures."""
    lines = format_alert(event).splitlines()
    head = lines[0].encode("ascii", "ignore").decode().strip() if lines else event.kind
    if head.startswith(event.symbol):
        head = head[len(event.symbol):].strip()
    detail = lines[1] if len(lines) > 2 else ""
    return head, detail


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (np.floating, np.integer)):
        return _jsonable(value.item())
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    return value


def study_label(study: Study) -> str:
    """Name a study in words: which rule on which leader."""
    return f"{study.leader} {study.kind.replace('_', ' ')} ({study.rule_id})"


# --- terminal ---------------------------------------------------------------------------------------


def print_report(result: BacktestResult, console: Any = None, alert_list: bool = True) -> None:
    """Print the alert list, the event study and the co-movement as rich tables."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # piped to a file or pager: wide enough that no figure is cut
            console = Console(width=140)
    span = ", ".join(f"{s.symbol} {s.first}→{s.last}" for s in result.spans)
    console.print(f"[bold]riskon backtest[/bold] · {result.config_path} · data: {result.source}")
    console.print(f"history: {span}")
    console.print(f"{result.bar_count:,} bars, {len(result.alerts)} alerts, {len(result.signals)} leader signal "
                  f"episodes in {result.seconds:.1f} s")
    for problem in result.problems:
        console.print(f"[yellow]note:[/yellow] {problem}")
    if alert_list:
        table = Table(title=f"Alerts the configured rules would have fired ({len(result.alerts)})", title_justify="left")
        for column in ("date", "rule", "symbol", "what", "figures"):
            table.add_column(column, overflow="fold")
        for event in result.alerts:
            head, detail = what_happened(event)
            table.add_row(f"{event.bar_time:%Y-%m-%d}", event.rule_id, event.symbol, head, detail)
        console.print(table)
    _print_study(result, console)
    _print_comovement(result, console)


def _print_study(result: BacktestResult, console: Any) -> None:
    from rich.table import Table

    if not result.studies:
        console.print("\nEvent study: no leader signals" + (" (no followers configured)" if not result.followers else ""))
        return
    console.print(f"\n[bold]Event study[/bold]: follower returns after each leader signal episode (alerts "
                  f"{result.episode_gap_days} days apart or more start a new episode), beside all start days of "
                  "the same years (baseline).")
    by_label: dict[str, list[Study]] = {}
    for study in result.studies:
        by_label.setdefault(study_label(study), []).append(study)
    for label, studies in by_label.items():
        table = Table(title=label, title_justify="left", show_lines=False)
        for column in ("follower", "after", "n", "median", "mean", "up", "worst", "best",
                       "base n", "base median", "base up", "own high", "own flip", "not yet"):
            table.add_column(column, justify="right" if column not in ("follower",) else "left", no_wrap=True)
        for study in studies:
            if study.skipped == len(study.signals):
                continue  # no signal while this follower traded: said in the line under the table
            for index, row in enumerate(study.rows):
                s, b = row.signals, row.baseline
                table.add_row(
                    study.follower if index == 0 else "", f"+{row.horizon}d", str(s.count), pct(s.median),
                    pct(s.mean), pct(s.share_positive, False), pct(s.worst), pct(s.best), f"{b.count:,}", pct(b.median),
                    pct(b.share_positive, False), f"{row.ath_within}",
                    "–" if row.flip_within is None else f"{row.flip_within}", f"{row.not_yet}" if row.not_yet else "",
                    end_section=index == len(study.rows) - 1,
                )
        console.print(table)
        first = studies[0]
        console.print(f"  {len(first.signals)} signal episodes; "
                      + "; ".join(f"{s.follower}: {len(s.signals) - s.skipped} while it traded, baseline years "
                                  f"{s.baseline_years[0]}–{s.baseline_years[1]}" if s.baseline_years
                                  else f"{s.follower}: none while it traded" for s in studies))
        _print_signals(studies, result.horizons, console)


def _print_signals(studies: list[Study], horizons: Sequence[int], console: Any) -> None:
    from rich.table import Table

    for first in range(0, len(studies), 2):  # two followers per table keeps a row on one line
        chunk = studies[first:first + 2]
        table = Table(title=f"each signal: {', '.join(s.follower for s in chunk)} (high: days to the follower's first "
                      "close above all its earlier ones; flip: to its own resistance flip)", title_justify="left",
                      show_header=True)
        table.add_column("signal", no_wrap=True)
        table.add_column("alerts", justify="right")
        for study in chunk:
            for h in horizons:
                table.add_column(f"{study.follower} +{h}d", justify="right", no_wrap=True)
            table.add_column(f"{study.follower} high", justify="right", no_wrap=True)
            if study.flips_watched:
                table.add_column(f"{study.follower} flip", justify="right", no_wrap=True)
        rows = 0
        for index, signal in enumerate(chunk[0].signals):
            if all((o := s.outcome(signal.day, horizons[0])) is None or o.status == "no_data" for s in chunk):
                continue
            cells = [str(signal.day), str(signal.alerts)]
            for study in chunk:
                for h in horizons:
                    outcome = study.outcome(signal.day, h)
                    cells.append("–" if outcome is None or outcome.status == "no_data" else
                                 "…" if outcome.status == "not_yet" else pct(outcome.return_pct))
                days = study.follower_ath_days[index] if index < len(study.follower_ath_days) else None
                cells.append(f"+{days}d" if days is not None else "")
                if study.flips_watched:
                    flip = study.follower_flip_days[index]
                    cells.append(f"+{flip}d" if flip is not None else "")
            table.add_row(*cells)
            rows += 1
        if rows:
            console.print(table)
    pending = sorted({(o.signal_day, o.horizon, o.needs_data_to) for s in studies for o in s.outcomes
                      if o.status == "not_yet"})
    for day, horizon, needed in pending:
        console.print(f"  … signal {day} +{horizon}d: not yet: needs data to {needed}")


def _print_comovement(result: BacktestResult, console: Any) -> None:
    from rich.table import Table

    if not result.comovements:
        return
    console.print("\n[bold]Co-movement[/bold]: correlation of daily returns, taken on the leader's trading days "
                  "(a follower's Monday return spans the weekend).")
    by_leader: dict[str, list[CoMovement]] = {}
    for move in result.comovements:
        by_leader.setdefault(move.leader, []).append(move)
    for leader, moves in by_leader.items():
        table = Table(title=f"with {leader}, by year", title_justify="left")
        table.add_column("year")
        for move in moves:
            table.add_column(f"{move.follower} days", justify="right")
            table.add_column(f"{move.follower} year", justify="right")
            for w in move.windows:
                table.add_column(f"{move.follower} {w}d avg", justify="right")
        years = sorted({y.year for m in moves for y in m.years})
        for year in years:
            cells = [str(year)]
            for move in moves:
                row = next((y for y in move.years if y.year == year), None)
                if row is None:
                    cells += [""] * (2 + len(move.windows))
                else:
                    cells += [str(row.days), corr(row.correlation)] + [corr(v) for v in row.mean_rolling]
            table.add_row(*cells)
        table.add_row("all", *[c for m in moves for c in (str(m.days), corr(m.overall), *[""] * len(m.windows))],
                      style="bold")
        console.print(table)


# --- files -----------------------------------------------------------------------------------------


def write_csv(result: BacktestResult, folder: str | Path) -> list[Path]:
    """Write alerts, signals, per-signal outcomes, the study and the co-movement as CSV files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def table(name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        path = folder / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for row in rows:
                writer.writerow(["" if v is None else v for v in row])
        written.append(path)

    table("alerts.csv", ["date", "rule", "kind", "symbol", "text", "values_json"],
          ((f"{e.bar_time:%Y-%m-%d}", e.rule_id, e.kind, e.symbol, format_alert(e).replace("\n", " | "),
            json.dumps(_jsonable(dict(e.values)))) for e in result.alerts))
    table("signals.csv", ["day", "leader", "rule", "kind", "alerts_in_episode", "price"],
          ((s.day, s.symbol, s.rule_id, s.kind, s.alerts, s.price) for s in result.signals))
    table("outcomes.csv", ["signal_day", "leader", "rule", "follower", "horizon_days", "status", "entry_day",
                           "entry_price", "exit_day", "exit_price", "return_pct", "needs_data_to", "own_high_after_days",
                           "own_flip_after_days"],
          ((o.signal_day, s.leader, s.rule_id, o.follower, o.horizon, o.status, o.entry_day, o.entry_price, o.exit_day,
            o.exit_price, o.return_pct, o.needs_data_to, o.ath_after_days, o.flip_after_days)
           for s in result.studies for o in s.outcomes))
    table("study.csv", ["leader", "rule", "kind", "follower", "horizon_days", "signals", "median_pct", "mean_pct",
                        "share_positive_pct", "worst_pct", "best_pct", "baseline_days", "baseline_median_pct",
                        "baseline_mean_pct", "baseline_share_positive_pct", "baseline_worst_pct", "baseline_best_pct",
                        "own_high_within", "own_flip_within", "not_yet", "baseline_first_year", "baseline_last_year"],
          ((s.leader, s.rule_id, s.kind, s.follower, r.horizon, r.signals.count, r.signals.median, r.signals.mean,
            r.signals.share_positive, r.signals.worst, r.signals.best, r.baseline.count, r.baseline.median,
            r.baseline.mean, r.baseline.share_positive, r.baseline.worst, r.baseline.best, r.ath_within, r.flip_within,
            r.not_yet,
            *(s.baseline_years or (None, None))) for s in result.studies for r in s.rows))
    windows = result.comovements[0].windows if result.comovements else DEFAULT_WINDOWS
    table("comovement_by_year.csv", ["leader", "follower", "year", "days", "correlation",
                                     *[f"mean_rolling_{w}d" for w in windows]],
          ((m.leader, m.follower, y.year, y.days, y.correlation, *y.mean_rolling) for m in result.comovements
           for y in m.years))
    table("comovement_rolling.csv", ["leader", "follower", "day", *[f"rolling_{w}d" for w in windows]],
          ((m.leader, m.follower, day.date(), *[None if not np.isfinite(v) else round(float(v), 6) for v in row])
           for m in result.comovements for day, row in zip(m.rolling.index, m.rolling.to_numpy())))
    return written


def to_json(result: BacktestResult) -> dict[str, Any]:
    """Return the whole result as JSON-ready data."""
    return _jsonable({
        "config": result.config_path, "source": result.source, "from": result.start, "to": result.end,
        "horizons_days": list(result.horizons), "episode_gap_days": result.episode_gap_days,
        "leaders": list(result.leaders), "followers": list(result.followers),
        "history": [asdict(s) for s in result.spans], "problems": result.problems,
        "alerts": [{"date": f"{e.bar_time:%Y-%m-%d}", "bar_time": e.bar_time, "rule": e.rule_id, "kind": e.kind,
                    "symbol": e.symbol, "values": dict(e.values), "text": format_alert(e)} for e in result.alerts],
        "signals": [asdict(s) for s in result.signals],
        "studies": [{"leader": s.leader, "rule": s.rule_id, "kind": s.kind, "follower": s.follower,
                     "baseline_years": s.baseline_years, "signals_before_follower_data": s.skipped,
                     "horizons": [asdict(r) for r in s.rows], "outcomes": [asdict(o) for o in s.outcomes]}
                    for s in result.studies],
        "comovement": [{"leader": m.leader, "follower": m.follower, "windows_days": list(m.windows),
                        "overall_correlation": m.overall, "days": m.days,
                        "by_year": [asdict(y) for y in m.years]} for m in result.comovements],
        "seconds": round(result.seconds, 3),
    })


def write_json(result: BacktestResult, path: str | Path) -> Path:
    """Write the result as one JSON document."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(result), indent=1, allow_nan=False), encoding="utf-8")
    return path


# --- the HTML report -------------------------------------------------------------------------------


def leader_charts(result: BacktestResult) -> dict[str, dict[str, bytes | None]]:
    """Draw, per leader study, the leader's signals, the followers' paths, and the co-movement."""
    from alerts.charts import baseline_median, comovement_chart, signals_chart, study_chart

    charts: dict[str, dict[str, bytes | None]] = {}
    longest = max(result.horizons) if result.horizons else 180
    by_label: dict[str, list[Study]] = {}
    for study in result.studies:
        by_label.setdefault(study_label(study), []).append(study)
    for label, studies in by_label.items():
        leader = studies[0].leader
        closes = result.closes[leader]
        signal_days = [s.day for s in studies[0].signals]
        paths, baselines = {}, {}
        for study in studies:
            traded = [sig.day for sig in study.signals
                      if (o := study.outcome(sig.day, result.horizons[0])) is not None and o.status != "no_data"]
            paths[study.follower] = follower_paths(traded, result.closes[study.follower], longest)
            if study.baseline_years:
                first, last = study.baseline_years
                leader_days = [d.date() for d in closes.index if first <= d.year <= last]
                grid, every_day = follower_paths(leader_days, result.closes[study.follower], longest)
                baselines[study.follower] = baseline_median(grid, every_day)
        charts[label] = {
            "signals": signals_chart(leader, [d.date() for d in closes.index], closes.to_list(), signal_days,
                                     f"{leader}: signal episodes of {studies[0].rule_id}"),
            "paths": study_chart(f"After each {label} signal: followers indexed to 100", paths, result.horizons,
                                 baselines),
        }
    by_leader: dict[str, list[CoMovement]] = {}
    for move in result.comovements:
        by_leader.setdefault(move.leader, []).append(move)
    for leader, moves in by_leader.items():
        charts[f"co-movement {leader}"] = {"comovement": comovement_chart(leader, moves)}
    return charts


CSS = """
body{font:15px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1b1b1b;max-width:1180px;
margin:24px auto;padding:0 20px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:34px 0 8px;border-bottom:2px solid #1f4e79;
padding-bottom:4px}h3{font-size:16px;margin:22px 0 6px}
.meta{color:#555;font-size:13px}.note{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 10px;
font-size:13px;margin:4px 0}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid #e3e3e3;text-align:right;white-space:nowrap}
th{background:#f2f5f9;font-weight:600;vertical-align:bottom}th.grp{text-align:center;border-bottom:1px solid #b8c4d3}td.l,th.l{text-align:left}
tr.sep td{border-top:2px solid #b8c4d3}.pos{color:#1b6e2a}.neg{color:#b3261e}.dim{color:#999}
.better{background:#e8f5e9}.worse{background:#fdecea}
img{max-width:100%;border:1px solid #e3e3e3;margin:6px 0}
details summary{cursor:pointer;font-weight:600;margin:8px 0}
.explain{font-size:13px;color:#333;max-width:900px}
.wide{overflow-x:auto;max-width:100%}table.small{font-size:12px}table.small th,table.small td{padding:2px 6px}
a{color:#1f4e79;text-decoration:none}a:hover{text-decoration:underline}
"""


def _cell(value: float | None, signed: bool = True) -> str:
    text = html.escape(pct(value, signed))
    if value is None or not signed:
        return f"<td>{text}</td>"
    return f'<td class="{"pos" if value > 0 else "neg" if value < 0 else ""}">{text}</td>'


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return f'<p class="dim">({html.escape(alt)}: too little data to draw)</p>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_html(result: BacktestResult) -> str:
    """Render the whole result as one self-contained HTML page with embedded PNG charts."""
    e = html.escape
    charts = leader_charts(result)
    out = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>riskon backtest</title>"
           f"<style>{CSS}</style></head><body>"]
    out.append("<h1>riskon backtest: does crypto follow small-cap signals?</h1>")
    out.append(f"<p class='meta'>config {e(result.config_path)} · data {e(result.source)} · "
               f"{result.bar_count:,} bars · {len(result.alerts)} alerts · {len(result.signals)} signal episodes"
               + (f" · from {result.start}" if result.start else "") + (f" · to {result.end}" if result.end else "")
               + f" · computed in {result.seconds:.1f} s</p>")
    out.append("<table><tr><th class='l'>symbol</th><th class='l'>role</th><th>bars</th><th>first</th><th>last</th></tr>")
    for span in result.spans:
        out.append(f"<tr><td class='l'>{e(span.symbol)}</td><td class='l'>{e(span.role)}</td><td>{span.bars:,}</td>"
                   f"<td>{span.first}</td><td>{span.last}</td></tr>")
    out.append("</table>")
    for problem in result.problems:
        out.append(f"<div class='note'>{e(problem)}</div>")
    out.append(
        "<p class='explain'><b>How to read this.</b> A <i>signal</i> is the first alert of an episode of one rule "
        f"on one leader; alerts less than {result.episode_gap_days} days after the previous one join its episode. "
        "A follower enters at its close on the signal day (for crypto, the UTC daily close, a few hours after the "
        "US equity close that made the signal) and exits at its close the given number of calendar days later. "
        "The <i>baseline</i> starts on every day the leader traded in the same years, so a signal is compared with "
        "chance, not with zero; a green median beats the baseline's, a red one trails it. <i>Own high within</i> "
        "counts signals after which the follower closed above every earlier close in its data within the horizon; "
        "<i>own flip within</i> those after which the follower's own resistance flip fired (– where no flip rule "
        "watches it). "
        "Signals too recent for a horizon say <i>not yet</i> and the date the data must reach.</p>")
    by_label: dict[str, list[Study]] = {}
    for study in result.studies:
        by_label.setdefault(study_label(study), []).append(study)
    if by_label:
        out.append(_glance_table(by_label, result.horizons))
    out.append("<h2>Event study</h2>")
    if not by_label:
        out.append("<p>No leader signals in this history.</p>")
    for number, (label, studies) in enumerate(by_label.items()):
        out.append(f"<h3 id='study-{number}'>{e(label)}</h3>")
        out.append(_img(charts[label]["signals"], f"{label} signals"))
        out.append(_study_table(studies))
        out.append(_img(charts[label]["paths"], f"{label} follower paths"))
        out.append(_signal_table(studies, result.horizons))
    out.append("<h2>Co-movement</h2><p class='explain'>Correlation of daily returns, sampled on the leader's "
               "trading days so that both returns span the same days (a Monday return includes the weekend for "
               "crypto). Rolling windows are calendar windows.</p>")
    by_leader: dict[str, list[CoMovement]] = {}
    for move in result.comovements:
        by_leader.setdefault(move.leader, []).append(move)
    for leader, moves in by_leader.items():
        out.append(f"<h3>with {e(leader)}</h3>")
        out.append(_img(charts[f"co-movement {leader}"]["comovement"], f"co-movement with {leader}"))
        out.append(_comovement_table(moves))
    out.append(f"<h2>Alerts ({len(result.alerts)})</h2><details><summary>every alert the configured rules "
               "would have fired</summary><table><tr><th class='l'>date</th><th class='l'>rule</th>"
               "<th class='l'>symbol</th><th class='l'>what</th><th class='l'>figures</th></tr>")
    for event in result.alerts:
        head, detail = what_happened(event)
        out.append(f"<tr><td class='l'>{event.bar_time:%Y-%m-%d}</td><td class='l'>{e(event.rule_id)}</td>"
                   f"<td class='l'>{e(event.symbol)}</td><td class='l'>{e(head)}</td><td class='l'>{e(detail)}</td></tr>")
    out.append("</table></details></body></html>")
    return "\n".join(out)


def _glance_table(by_label: Mapping[str, list[Study]], horizons: Sequence[int]) -> str:
    """Render one line per signal kind: each follower's median return after it, against the baseline's."""
    e = html.escape
    followers = list(dict.fromkeys(s.follower for studies in by_label.values() for s in studies))
    head = "".join(f"<th colspan={len(horizons)} class='grp'>{e(f)}</th>" for f in followers)
    sub = "".join(f"<th>+{h}d</th>" for _ in followers for h in horizons)
    rows = ["<h2>At a glance</h2><p class='explain'>Median return of each follower after the signals; green where "
            "it beats the median of every day in the same years (the baseline), red where it trails it. "
            "n: signals while the first follower traded. Click a signal for its tables and charts.</p>"
            f"<div class='wide'><table><tr><th class='l' rowspan=2>signal</th><th rowspan=2>n</th>{head}</tr>"
            f"<tr>{sub}</tr>"]
    for number, (label, studies) in enumerate(by_label.items()):
        by_follower = {s.follower: s for s in studies}
        first = studies[0]
        cells = []
        for follower in followers:
            study = by_follower.get(follower)
            for h in horizons:
                row = next((r for r in study.rows if r.horizon == h), None) if study else None
                if row is None or row.signals.median is None:
                    cells.append("<td class='dim'>–</td>")
                    continue
                better = row.baseline.median is not None and row.signals.median > row.baseline.median
                verdict = "better" if better else "worse" if row.baseline.median is not None else ""
                cells.append(f"<td class='{verdict}' title='{row.signals.count} signals; baseline median "
                             f"{e(pct(row.baseline.median))}'>{e(pct(row.signals.median))}</td>")
        counted = len(first.signals) - first.skipped
        rows.append(f"<tr><td class='l'><a href='#study-{number}'>{e(label)}</a></td><td>{counted}</td>"
                    f"{''.join(cells)}</tr>")
    rows.append("</table></div>")
    return "".join(rows)


def _study_table(studies: list[Study]) -> str:
    head = ("<table><tr><th class='l' rowspan=2>follower</th><th rowspan=2>after</th>"
            "<th colspan=6 class='grp'>after the signals</th><th colspan=4 class='grp'>baseline: every day</th>"
            "<th rowspan=2>own high<br>within</th><th rowspan=2>own flip<br>within</th><th rowspan=2>not yet</th></tr>"
            "<tr><th>n</th><th>median</th><th>mean</th><th>up</th><th>worst</th><th>best</th>"
            "<th>n</th><th>median</th><th>mean</th><th>up</th></tr>")
    rows = [head]
    for study in studies:
        if study.skipped == len(study.signals):
            rows.append(f"<tr class=sep><td class='l'>{html.escape(study.follower)}</td>"
                        "<td colspan=14 class='l dim'>no signal while it traded</td></tr>")
            continue
        years = f" ({study.baseline_years[0]}–{study.baseline_years[1]})" if study.baseline_years else ""
        for index, row in enumerate(study.rows):
            s, b = row.signals, row.baseline
            verdict = ""
            if s.median is not None and b.median is not None:
                verdict = " class='better'" if s.median > b.median else " class='worse'"
            name = f"{html.escape(study.follower)}{html.escape(years)}" if index == 0 else ""
            rows.append(
                f"<tr{' class=sep' if index == 0 else ''}><td class='l'>{name}</td><td>+{row.horizon}d</td>"
                f"<td>{s.count}</td><td{verdict}>{html.escape(pct(s.median))}</td>{_cell(s.mean)}"
                f"<td>{html.escape(pct(s.share_positive, False))}</td>{_cell(s.worst)}{_cell(s.best)}"
                f"<td>{b.count:,}</td>{_cell(b.median)}{_cell(b.mean)}<td>{html.escape(pct(b.share_positive, False))}</td>"
                f"<td>{row.ath_within} of {s.count + row.not_yet}</td>"
                f"<td>{'–' if row.flip_within is None else f'{row.flip_within} of {s.count + row.not_yet}'}</td>"
                f"<td>{row.not_yet or ''}{'*' if row.not_yet else ''}</td></tr>")
    rows.append("</table>")
    pending = sorted({(o.signal_day, o.horizon, o.needs_data_to) for st in studies for o in st.outcomes
                      if o.status == "not_yet"})
    if pending:
        rows.append("<p class='dim'>* not yet: " + "; ".join(
            f"signal {day} +{h}d needs data to {to}" for day, h, to in pending) + "</p>")
    return "".join(rows)


def _signal_table(studies: list[Study], horizons: Sequence[int]) -> str:
    e = html.escape
    cols = "".join(f"<th>{e(s.follower)} +{h}d</th>" for s in studies for h in horizons)
    cols += "".join(f"<th>{e(s.follower)} own high</th>" for s in studies)
    cols += "".join(f"<th>{e(s.follower)} own flip</th>" for s in studies if s.flips_watched)
    rows = [f"<details open><summary>each signal (own high: days to the follower's first close above every "
            f"earlier close in its data)</summary><div class='wide'><table class='small'><tr><th class='l'>signal day</th><th>alerts</th>"
            f"<th>leader close</th>{cols}</tr>"]
    before = 0
    for index, signal in enumerate(studies[0].signals):
        if all((o := s.outcome(signal.day, horizons[0])) is None or o.status == "no_data" for s in studies):
            before += 1
            continue
        cells = []
        for study in studies:
            for h in horizons:
                outcome = study.outcome(signal.day, h)
                if outcome is None or outcome.status == "no_data":
                    cells.append("<td class='dim'>–</td>")
                elif outcome.status == "not_yet":
                    cells.append(f"<td class='dim' title='needs data to {outcome.needs_data_to}'>not yet</td>")
                else:
                    cells.append(_cell(outcome.return_pct))
        for study in studies:
            days = study.follower_ath_days[index] if index < len(study.follower_ath_days) else None
            cells.append(f"<td>{'+%dd' % days if days is not None else ''}</td>")
        for study in studies:
            if study.flips_watched:
                flip = study.follower_flip_days[index]
                cells.append(f"<td>{'+%dd' % flip if flip is not None else ''}</td>")
        price = f"{signal.price:,.2f}" if signal.price else ""
        rows.append(f"<tr><td class='l'>{signal.day}</td><td>{signal.alerts}</td><td>{price}</td>{''.join(cells)}</tr>")
    rows.append("</table></div>")
    if before:
        rows.append(f"<p class='dim'>{before} earlier signal(s) came before any follower had a price.</p>")
    rows.append("</details>")
    return "".join(rows)


def _comovement_table(moves: list[CoMovement]) -> str:
    e = html.escape
    windows = moves[0].windows
    head = "".join(f"<th>{e(m.follower)} days</th><th>{e(m.follower)} year</th>"
                   + "".join(f"<th>{e(m.follower)} {w}d avg</th>" for w in windows) for m in moves)
    rows = [f"<table><tr><th class='l'>year</th>{head}</tr>"]
    for year in sorted({y.year for m in moves for y in m.years}):
        cells = []
        for move in moves:
            row = next((y for y in move.years if y.year == year), None)
            if row is None:
                cells.append("<td></td>" * (2 + len(windows)))
            else:
                cells.append(f"<td>{row.days}</td><td>{corr(row.correlation)}</td>"
                             + "".join(f"<td>{corr(v)}</td>" for v in row.mean_rolling))
        rows.append(f"<tr><td class='l'>{year}</td>{''.join(cells)}</tr>")
    total = "".join(f"<td><b>{m.days}</b></td><td><b>{corr(m.overall)}</b></td>" + "<td></td>" * len(windows)
                    for m in moves)
    rows.append(f"<tr class='sep'><td class='l'><b>all</b></td>{total}</tr></table>")
    return "".join(rows)


def write_html(result: BacktestResult, path: str | Path) -> Path:
    """Write the self-contained HTML report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(result), encoding="utf-8")
    return path


# --- the command ---------------------------------------------------------------------------------


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date; use YYYY-MM-DD") from None


def _horizons(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of days; use e.g. 7,30,90,180") from None
    if not values or any(v <= 0 or v > 3650 for v in values):
        raise argparse.ArgumentTypeError("horizons must be whole days between 1 and 3650, e.g. 7,30,90,180")
    return values


def _symbols(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_backtest_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the `backtest` subcommand to the riskon command line."""
    parser = sub.add_parser(
        "backtest", help="run the rules over history and study what crypto did after each signal",
        description="Run the configured rules over history with the live bot's own engine and list every alert "
        "they would have fired; then the event study (followers' returns after each leader signal, beside the "
        "baseline of all days) and the co-movement of daily returns. Nothing is sent to any chat.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="DIR", help="folder of daily CSVs, one per symbol (file stem = csv name)")
    source.add_argument("--live", action="store_true", help="fetch the history through the configured feeds "
                        "(cached in --cache)")
    parser.add_argument("--from", dest="start", type=_day, metavar="DATE",
                        help="first day whose alerts count; earlier bars only warm up the rules")
    parser.add_argument("--to", dest="end", type=_day, metavar="DATE",
                        help="last day of data used (as if today were DATE)")
    parser.add_argument("--config", default="config.yaml", help="config file for symbols and rules (default: %(default)s)")
    parser.add_argument("--horizons", type=_horizons, default=DEFAULT_HORIZONS, metavar="DAYS",
                        help="forward horizons in calendar days (default: 7,30,90,180)")
    parser.add_argument("--episode-gap", type=int, default=30, metavar="DAYS",
                        help="alerts closer than this to the previous one join its episode; 0 studies every alert "
                        "(default: %(default)s)")
    parser.add_argument("--leaders", type=_symbols, metavar="SYMBOLS",
                        help="comma-separated leaders (default: every non-crypto symbol)")
    parser.add_argument("--followers", type=_symbols, metavar="SYMBOLS",
                        help="comma-separated followers (default: crypto and composite symbols, "
                        "except the members of a composite)")
    parser.add_argument("--csv", metavar="DIR", help="write alerts, signals, outcomes, study and co-movement CSVs here")
    parser.add_argument("--json", metavar="FILE", help="write the whole result as JSON")
    parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with charts")
    parser.add_argument("--cache", default="backtest-cache.db", metavar="PATH",
                        help="bars cache for --live (default: %(default)s)")
    parser.add_argument("--no-alert-list", action="store_true", help="print the study without the list of alerts")
    parser.set_defaults(handler=cmd_backtest)
    return parser


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run a backtest from the command line and write what was asked."""
    if args.episode_gap < 0:
        raise BacktestError("--episode-gap must be 0 or more days")
    if args.start and args.end and args.start > args.end:
        raise BacktestError(f"--from {args.start} is after --to {args.end}")
    config = load_config(args.config)
    if args.live:
        history = asyncio.run(fetch_live_history(config, args.cache, args.end))
    else:
        history = load_csv_history(config, args.data, args.end)
    result = backtest(config, history, start=args.start, end=args.end, horizons=args.horizons,
                      episode_gap_days=args.episode_gap, leaders=args.leaders, followers=args.followers)
    print_report(result, alert_list=not args.no_alert_list)
    if args.csv:
        paths = write_csv(result, args.csv)
        print(f"wrote {len(paths)} CSV files to {args.csv}")
    if args.json:
        print(f"wrote {write_json(result, args.json)}")
    if args.html:
        print(f"wrote {write_html(result, args.html)}")
    return 0
