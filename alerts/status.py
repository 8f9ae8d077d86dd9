"""Figures for /status: day change, distance from the high, freshness, correlation. Pure: `now` is an argument."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Mapping, Sequence

from alerts.bars import INTERVAL_SECONDS, Bar

# How long a symbol may go without a new final bar before /status flags it stale. Index and ETF
# bars pause over weekends and holidays (Friday's bar is still the newest on Tuesday morning after
# a Monday holiday); crypto trades every day; a breadth series (fragility) is a weekly snapshot.
STALE_AFTER_DAYS = {"crypto": 2.0, "composite": 2.0, "index": 5.0, "etf": 5.0, "breadth": 10.0}


@dataclass(frozen=True)
class DayChange:
    """The last close and how far it moved from the close before."""

    price: float
    price_time: datetime
    change_pct: float | None  # None when there is no earlier close


def day_change(bars: Sequence[Bar]) -> DayChange | None:
    """Return the last close and its change from the previous close; None without bars."""
    if not bars:
        return None
    last = bars[-1]
    if len(bars) < 2 or bars[-2].close <= 0:
        return DayChange(last.close, last.time, None)
    return DayChange(last.close, last.time, (last.close / bars[-2].close - 1) * 100)


def distance_from_high(price: float, high: float) -> float:
    """Return how far `price` is from `high`, in percent (negative below it)."""
    return (price / high - 1) * 100


def highest_close(bars: Sequence[Bar]) -> tuple[float, datetime] | None:
    """Return the highest close and the first bar time it was reached; None without bars."""
    if not bars:
        return None
    # The earliest of a tie: a close that only equals the high is not a new high (as in new_ath).
    best = min(bars, key=lambda b: (-b.close, b.time))
    return best.close, best.time


def stale_after(asset_class: str, interval: str = "1d") -> timedelta:
    """Return how old the newest bar may be before the symbol counts as stale."""
    if interval == "1d":
        return timedelta(days=STALE_AFTER_DAYS.get(asset_class, 5.0))
    # Intraday bars: a few missed bars are noise, more is an outage.
    return timedelta(seconds=INTERVAL_SECONDS.get(interval, 86400) * 6)


def is_stale(last_bar_time: datetime | None, now: datetime, asset_class: str, interval: str = "1d") -> bool:
    """Say whether a symbol's newest bar is too old (or missing)."""
    if last_bar_time is None:
        return True
    return now - last_bar_time > stale_after(asset_class, interval)


def return_correlation(follower: Sequence[Bar], leader: Sequence[Bar], days: int, now: datetime) -> float | None:
    """Return the correlation of daily returns over the last `days` calendar days; None if too few shared days.

    Returns are taken between consecutive dates on which both have a close, so a weekend move of a
    crypto coin is compared with the index's Friday-to-Monday move, not dropped or double counted.
    """
    since = (now - timedelta(days=days)).date()
    follower_closes = _closes_by_date(follower, since)
    leader_closes = _closes_by_date(leader, since)
    shared = sorted(set(follower_closes) & set(leader_closes))
    if len(shared) < max(10, days // 5):
        return None
    a = [math.log(follower_closes[d] / follower_closes[p]) for p, d in zip(shared, shared[1:])]
    b = [math.log(leader_closes[d] / leader_closes[p]) for p, d in zip(shared, shared[1:])]
    return _pearson(a, b)


def _closes_by_date(bars: Sequence[Bar], since: date) -> dict[date, float]:
    # One day before `since` is kept so the first return of the window has its base.
    start = since - timedelta(days=1)
    return {b.time.date(): b.close for b in bars if b.time.date() >= start and b.close > 0}


def _pearson(a: Sequence[float], b: Sequence[float]) -> float | None:
    n = len(a)
    if n < 2:
        return None
    mean_a, mean_b = sum(a) / n, sum(b) / n
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b))
    var_a = sum((x - mean_a) ** 2 for x in a)
    var_b = sum((y - mean_b) ** 2 for y in b)
    if var_a <= 0 or var_b <= 0:
        return None  # a flat series correlates with nothing
    return cov / math.sqrt(var_a * var_b)


def net_flow_total(flows: Sequence[tuple[datetime, float]], days: int, now: datetime) -> float | None:
    """Return the sum of daily net flows (USD) over the last `days` days; None without any."""
    since = now - timedelta(days=days)
    recent = [flow for when, flow in flows if when >= since and math.isfinite(flow)]
    return sum(recent) if recent else None


def tracked_levels(state: Mapping[str, Any] | None) -> list[tuple[float, Mapping[str, Any]]]:
    """Return the levels in a level-watching rule's state (`levels`: by key or a list), each with its details."""
    levels = (state or {}).get("levels")
    if isinstance(levels, Mapping):
        items = [value if isinstance(value, Mapping) else {"level": key, "phase": value} for key, value in levels.items()]
    elif isinstance(levels, (list, tuple)):
        items = [item if isinstance(item, Mapping) else {"level": item} for item in levels]
    else:
        return []
    out = []
    for item in items:
        try:
            level = float(item.get("level", item.get("price")))  # type: ignore[arg-type]  # None: TypeError below
        except (TypeError, ValueError):
            continue
        if math.isfinite(level):
            out.append((level, item))
    return sorted(out, key=lambda pair: pair[0])


def describe_levels(state: Mapping[str, Any] | None, price: float | None = None) -> list[str]:
    """Return one line per tracked level: the level, where it came from, its phase, and the price's distance."""
    lines = []
    for level, detail in tracked_levels(state):
        source = str(detail.get("source") or "")
        phase = str(detail.get("phase") or detail.get("stage") or detail.get("status") or "")
        text = f"{level:,.2f}"
        if source and source != "configured":
            text += f" ({source})"
        if phase:
            text += f": {LEVEL_PHASES.get(phase, phase.replace('_', ' '))}"
        if price is not None and level > 0:
            text += f" (price {distance_from_high(price, level):+.1f}% from it)"
        lines.append(text)
    return lines


# The resistance-flip phases in a trader's words.
LEVEL_PHASES = {
    "armed": "below, watching for a break",
    "broken": "broken, waiting for a retest",
    "retested": "retested, holding above?",
    "above": "price above it, nothing pending",
}
