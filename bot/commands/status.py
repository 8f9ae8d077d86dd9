"""The /status and /health views: prices, all-time highs, levels, flows, data freshness and the bot's health."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from alerts import status as figures
from alerts.messages import format_pct, format_price, format_usd
from bot.degraded import degraded_reasons, staleness
from bot.fragility_report import status_lines as fragility_lines
from bot.seams import BotState, HealthView
from storage import Store

if TYPE_CHECKING:
    from bot.config import Config, SymbolConfig

log = logging.getLogger(__name__)


def symbol_line(runtime: HealthView, symbol: SymbolConfig, now: datetime) -> str:
    """Say a symbol's price, day change and distance from its high in one line, flagged when stale."""
    if runtime.store.last_bar_time(symbol.id) is None:
        # Never had a bar: not stale, just not there yet (a composite waiting for its members' first bars).
        health = runtime.health.get(symbol.feed)
        why = health.symbol_errors.get(symbol.id) if health is not None else None
        return f"{symbol.id}: no data yet" + (f", {why}" if why else "")
    stale = staleness(runtime, symbol, now)
    return ("⚠️ STALE " if stale else "") + f"{symbol.id}: " + "; ".join(_price_bits(runtime, symbol, now))


def symbol_detail(runtime: HealthView, symbol: SymbolConfig, now: datetime) -> list[str]:
    """Describe one symbol in detail: price, freshness, tracked levels, flows and correlation with the leader."""
    store, config = runtime.store, runtime.config
    lines = [f"{symbol.id} ({symbol.asset_class})", *_price_bits(runtime, symbol, now)]
    last = store.last_bar_time(symbol.id)
    stale = staleness(runtime, symbol, now)
    data = f"Data: last daily bar {last:%Y-%m-%d}" if last is not None else "Data: nothing stored yet"
    lines.append(data + (f" — ⚠️ STALE, {stale}" if stale else ""))
    latest = store.recent_bars(symbol.id, 1)
    for rule in config.rules:
        if symbol.id not in rule.symbols or rule.kind == "new_ath":
            continue
        state, _ = store.rule_state(rule.id, symbol.id, rule.kind)
        for level_line in figures.describe_levels(state, latest[-1].close if latest else None):
            lines.append(f"Level ({rule.id}) {level_line}")
    flows = last_year_flows(store, symbol.id, now)
    if flows is not None:
        for days in (5, 20):
            total = figures.net_flow_total(flows, days, now)
            if total is not None:
                lines.append(f"Net flow, last {days} days: {format_usd(total)}")
    lines += fragility_lines(store, config, symbol.id, now)
    leader = _leader(config)
    if symbol.asset_class in ("crypto", "composite") and leader is not None:  # ALTS: the altcoin composite
        follower_bars = store.load_bars(symbol.id, since=now - timedelta(days=100))
        leader_bars = store.load_bars(leader.id, since=now - timedelta(days=100))
        for days in (30, 90):
            corr = figures.return_correlation(follower_bars, leader_bars, days, now)
            shown = f"{corr:+.2f}" if corr is not None else "not enough shared days"
            lines.append(f"Correlation with {leader.id}, {days} days: {shown}")
    return lines


def health_summary(runtime: HealthView, now: datetime) -> list[str]:
    """Say whether alerting runs, each feed's last good poll, deliveries pending, and what is degraded."""
    store = runtime.store
    lines = ["Bot: PAUSED (alerts recorded, not sent)" if runtime.paused else "Bot: running"]
    for polls in store.feed_health():
        ok = polls.last_ok_at
        when = f"last good poll {age(now - ok)} ago" if ok else "no good poll yet"
        failing = f", {polls.failures} failures in a row" if polls.failures else ""
        lines.append(f"Feed {polls.feed}: {when}{failing}")
    counts = store.outbox_counts()
    lines.append(f"Deliveries pending: {counts.get('pending', 0) + counts.get('retrying', 0)}")
    return lines + _degraded(runtime, now)


def tracked_levels(runtime: BotState, symbol_id: str) -> list[float]:
    """Return the price levels the symbol's level-watching rules track."""
    levels: list[float] = []
    for rule in runtime.config.rules:
        if symbol_id in rule.symbols and rule.kind != "new_ath":
            state, _ = runtime.store.rule_state(rule.id, symbol_id, rule.kind)
            levels.extend(level for level, _ in figures.tracked_levels(state))
    return levels


def last_year_flows(store: Store, symbol_id: str, now: datetime) -> list[tuple[datetime, float]] | None:
    """Return the fund's daily net flows of the last year, or None when none are stored."""
    flows = store.load_flows(symbol_id, since=now - timedelta(days=366))
    return flows or None


def age(delta: timedelta) -> str:
    """Say how long a span is in its largest fitting unit: 45s, 12m, 5h, 3d."""
    seconds = max(delta.total_seconds(), 0)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def _leader(config: Config) -> SymbolConfig | None:
    """Return the small-cap leader crypto is compared with: ^RUT if configured, else the first index or ETF."""
    for symbol in config.symbols:
        if symbol.id.upper() in ("^RUT", "RUT"):
            return symbol
    return next((s for s in config.symbols if s.asset_class in ("index", "etf")), None)


def _ath(runtime: BotState, symbol_id: str) -> tuple[float, datetime, str] | None:
    """Return the all-time high a new_ath rule tracks for the symbol (or the cached bars' best close)."""
    for rule in runtime.config.rules:
        if rule.kind == "new_ath" and symbol_id in rule.symbols:
            state, _ = runtime.store.rule_state(rule.id, symbol_id, rule.kind)
            if state and state.get("ath") is not None:
                return float(state["ath"]), datetime.fromisoformat(state["ath_time"]), ""
    best = figures.highest_close(runtime.store.load_bars(symbol_id))
    return (best[0], best[1], " (highest stored close)") if best else None


def _price_bits(runtime: BotState, symbol: SymbolConfig, now: datetime) -> list[str]:
    bars = runtime.store.recent_bars(symbol.id, 2)
    change = figures.day_change(bars)
    if change is None:
        return ["no data yet"]
    if symbol.asset_class == "breadth":  # a share in percent, one bar per snapshot: no price, no all-time high
        moved = f", {change.price - bars[-2].close:+.1f} points since {bars[-2].time:%Y-%m-%d}" if len(bars) > 1 else ""
        return [f"{change.price:.1f} % on {change.price_time:%Y-%m-%d}{moved}"]
    day = f" ({format_pct(change.change_pct)} on the day)" if change.change_pct is not None else ""
    bits = [f"{format_price(change.price)}{day}"]
    ath = _ath(runtime, symbol.id)
    if ath is not None:
        high, when, note = ath
        distance = format_pct(figures.distance_from_high(change.price, high))
        bits.append(f"ATH {format_price(high)} on {when:%Y-%m-%d}{note}, {distance} from it")
    return bits


def _degraded(runtime: HealthView, now: datetime) -> list[str]:
    """Say what is degraded, one line each (the same reasons /healthz gives), or that all is well."""
    try:
        reasons = degraded_reasons(runtime, now)
    except Exception:  # a feed's or the store's trouble must not break /status
        log.debug("degraded reasons not available", exc_info=True)
        return []
    return ["Degraded:", *(f"• {reason}" for reason in reasons)] if reasons else ["All feeds and channels OK"]
