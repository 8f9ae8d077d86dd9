"""Event study and co-movement: what followers did after each leader signal, against chance.

Pure functions over closes (alerts.closes.Closes: UTC calendar days and closes). Conventions, written down once:

- A signal on day D (a leader's daily bar of D) enters each follower at the follower's close on D, or its
  last close before D when it has no bar that day. For crypto against US equities that close is UTC midnight
  ending D, three to four hours after the equity close that made the signal, so the entry is a price a trader
  could have had.
- The return at +h days is the follower's close on D+h calendar days (or its last close before that day)
  over the entry. When the data ends before D+h the outcome is "not yet", naming the date the data must reach.
- The baseline takes every day the leader traded in the same calendar years as the counted signals as a start
  day, with the same horizons and the same rules, so a signal is compared with chance, not with zero.
- "Own ATH" is a follower close above every earlier close of its whole history (the new_ath rule by close).
- Co-movement and lead/lag: alerts/comovement.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Iterable, Mapping, Sequence

import numpy as np

from alerts.bars import Bar
from alerts.closes import Closes, as_date, day_number
from alerts.events import AlertEvent
from alerts.significance import Significance, median, rotation_test

DEFAULT_HORIZONS = (7, 30, 90, 180)
# A follower close older than this before the signal day is not an entry price (the follower was not trading).
MAX_ENTRY_STALENESS_DAYS = 5


def closes_from_bars(bars: Iterable[Bar]) -> Closes:
    """Return final daily closes by UTC calendar date, oldest first (a day given twice keeps its last bar)."""
    finals = [bar for bar in bars if bar.final]
    return Closes.of([bar.time for bar in finals], [bar.close for bar in finals])


@dataclass(frozen=True)
class Signal:
    """One leader signal the study follows: the first alert of an episode of one rule on one symbol."""

    day: date
    symbol: str
    rule_id: str
    kind: str
    alerts: int = 1  # alerts of the same rule and symbol folded into this episode
    price: float | None = None


def signal_episodes(events: Iterable[AlertEvent], gap_days: int = 30) -> list[Signal]:
    """Fold alerts into episodes: an alert within `gap_days` of the previous one (same rule, symbol) joins it."""
    by_key: dict[tuple[str, str, str], list[AlertEvent]] = {}
    for event in sorted(events, key=lambda e: e.bar_time):
        by_key.setdefault((event.rule_id, event.symbol, event.kind), []).append(event)
    signals: list[Signal] = []
    for (rule_id, symbol, kind), items in by_key.items():
        current: Signal | None = None
        previous_day: date | None = None
        for event in items:
            day = event.bar_time.date()
            price = event.values.get("price") if isinstance(event.values.get("price"), (int, float)) else None
            if current is not None and previous_day is not None and gap_days > 0 and (day - previous_day).days < gap_days:
                current = Signal(current.day, symbol, rule_id, kind, current.alerts + 1, current.price)
                signals[-1] = current
            else:
                current = Signal(day, symbol, rule_id, kind, 1, price)
                signals.append(current)
            previous_day = day
    return sorted(signals, key=lambda s: (s.day, s.symbol, s.rule_id))


@dataclass(frozen=True)
class Outcome:
    """What one follower did after one signal over one horizon."""

    signal_day: date
    follower: str
    horizon: int
    status: str  # "ok" | "not_yet" | "no_data" (the follower had no price near the signal day)
    entry_day: date | None = None
    entry_price: float | None = None
    exit_day: date | None = None
    exit_price: float | None = None
    return_pct: float | None = None
    needs_data_to: date | None = None
    # Days from the signal to the follower's first own all-time-high close within the horizon, if any.
    ath_after_days: int | None = None
    # Days from the signal to the follower's first own resistance flip within the horizon, if any.
    flip_after_days: int | None = None

    @property
    def note(self) -> str:
        """Say in words why there is no return, or the return."""
        if self.status == "not_yet":
            return f"not yet: needs data to {self.needs_data_to}"
        if self.status == "no_data":
            return "no follower price at the signal"
        return f"{self.return_pct:+.1f}%"


@dataclass(frozen=True)
class Summary:
    """Distribution of returns over one horizon: count, median, mean, share positive, worst, best (percent)."""

    count: int
    median: float | None
    mean: float | None
    share_positive: float | None  # 0..100
    worst: float | None
    best: float | None

    @classmethod
    def of(cls, returns: Sequence[float] | np.ndarray) -> Summary:
        """Summarise returns in percent; empty input gives a count of 0 and no figures."""
        values = np.asarray(returns, dtype="float64")
        values = values[np.isfinite(values)]
        if values.size == 0:
            return cls(0, None, None, None, None, None)
        # The sum over the count and the share of positives are np.mean's figures to the bit, without its overhead.
        return cls(
            int(values.size), median(values), float(values.sum()) / values.size,
            np.count_nonzero(values > 0) / values.size * 100, float(values.min()), float(values.max()),
        )


@dataclass(frozen=True)
class HorizonRow:
    """One horizon of one leader-follower study: the signals' returns beside the baseline's."""

    horizon: int
    signals: Summary
    baseline: Summary
    not_yet: int  # signals too recent for this horizon
    ath_within: int  # signals after which the follower made its own ATH within the horizon
    needs_data_to: date | None = None  # the latest date a pending signal needs
    # Signals after which the follower's own resistance flip fired within the horizon; None: no flip rule watches it.
    flip_within: int | None = None
    test: Significance | None = None  # the signals' median against every rotation of their days (significance.py)


@dataclass(frozen=True)
class Study:
    """The event study of one leader rule on one symbol against one follower."""

    leader: str
    rule_id: str
    kind: str
    follower: str
    signals: tuple[Signal, ...]
    outcomes: tuple[Outcome, ...]
    rows: tuple[HorizonRow, ...]
    baseline_years: tuple[int, int] | None
    skipped: int = 0  # signals before the follower had any price
    follower_ath_days: tuple[int | None, ...] = field(default_factory=tuple)
    # Days to the follower's first own flip within the longest horizon; all None when no flip rule watches it.
    follower_flip_days: tuple[int | None, ...] = field(default_factory=tuple)
    flips_watched: bool = False

    def outcome(self, signal_day: date, horizon: int) -> Outcome | None:
        """Return the outcome of one signal at one horizon."""
        return next((o for o in self.outcomes if o.signal_day == signal_day and o.horizon == horizon), None)


class _Follower:
    """A follower's closes as arrays, with where its all-time-high closes are."""

    def __init__(self, closes: Closes) -> None:
        usable = closes.values > 0  # neither missing (NaN) nor a zero or negative price
        self.days = closes.days[usable]
        self.closes = closes.values[usable]
        n = self.closes.size
        earlier_max = np.maximum.accumulate(self.closes)
        is_ath = np.zeros(n, dtype=bool)
        if n > 1:
            is_ath[1:] = self.closes[1:] > earlier_max[:-1]
        # next_ath[i]: the first ATH index strictly after i (n when none).
        positions = np.where(is_ath, np.arange(n), n)
        next_ath = np.minimum.accumulate(positions[::-1])[::-1]
        self.next_ath_after = np.append(next_ath[1:], n) if n else np.zeros(0, dtype=np.int64)

    @property
    def last_day(self) -> int | None:
        return int(self.days[-1]) if self.days.size else None

    def forward(self, starts: np.ndarray, horizons: Sequence[int]) -> dict[int, dict[str, np.ndarray]]:
        """Vectorised entry, exit, return and ATH timing for start days (day numbers), per horizon."""
        n = self.days.size
        # The entry and the next ATH after it are the same for every horizon: looked up once.
        entry = np.searchsorted(self.days, starts, side="right") - 1
        has_entry = entry >= 0
        # np.minimum/np.maximum rather than np.clip: the same indexes at a fraction of np.clip's overhead per call.
        safe_entry = np.minimum(np.maximum(entry, 0), max(n - 1, 0))
        if n:
            has_entry &= (starts - self.days[safe_entry]) <= MAX_ENTRY_STALENESS_DAYS
            nxt = self.next_ath_after[safe_entry]
            found = has_entry & (nxt < n)
            after = np.where(found, self.days[np.minimum(nxt, n - 1)] - starts, -1)  # nxt is never negative
        out = {}
        for horizon in horizons:
            targets = starts + horizon
            ready = has_entry & (targets <= (self.last_day if n else -1))
            exit_ = np.minimum(np.maximum(np.searchsorted(self.days, targets, side="right") - 1, 0), max(n - 1, 0))
            returns = np.full(starts.shape, np.nan)
            ath_days = np.full(starts.shape, -1, dtype=np.int64)
            if n:
                returns[ready] = (self.closes[exit_[ready]] / self.closes[safe_entry[ready]] - 1) * 100
                ath_days = np.where(found & (after <= horizon), after, -1)
            out[horizon] = {"entry": safe_entry, "has_entry": has_entry, "ready": ready, "exit": exit_,
                            "returns": returns, "targets": targets, "ath_days": ath_days}
        return out


class _Leader:
    """A leader's trading days as day numbers and years, read once for all its studies."""

    def __init__(self, closes: Closes, horizons: Sequence[int]) -> None:
        known = closes.known()
        self.days = known.days
        self.years = known.years()
        self.horizons = horizons
        # A follower's forward figures from every leader day, per follower and horizon: each study's baseline is
        # the run of its years, so it is computed once, not once per signal group (each day's figure stands alone).
        self._every_day: dict[str, dict[int, dict[str, np.ndarray]]] = {}

    def baseline_span(self, years: tuple[int, int]) -> slice:
        """Return where the days it traded in the given calendar years (the baseline's start days) are."""
        return slice(int(np.searchsorted(self.years, years[0], side="left")),
                     int(np.searchsorted(self.years, years[1], side="right")))

    def baseline(self, follower_name: str, follower: _Follower, span: slice, horizon: int) -> dict[str, np.ndarray]:
        """Return `follower.forward` of the baseline's start days (the days in `span`) at a horizon."""
        if follower_name not in self._every_day:
            self._every_day[follower_name] = follower.forward(self.days, self.horizons)
        return {name: values[span] for name, values in self._every_day[follower_name][horizon].items()}


def event_study(
    signals: Sequence[Signal],
    leader_closes: Mapping[str, Closes],
    follower_closes: Mapping[str, Closes],
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    follower_flips: Mapping[str, Sequence[date]] | None = None,
) -> list[Study]:
    """Study every (leader rule, symbol) signal group against every follower, beside the baseline.

    `follower_flips` gives, per follower watched by a flip rule, the days its own resistance flips fired.
    """
    follower_flips = follower_flips or {}
    horizons = tuple(sorted({int(h) for h in horizons if int(h) > 0}))
    groups: dict[tuple[str, str, str], list[Signal]] = {}
    for signal in signals:
        groups.setdefault((signal.symbol, signal.rule_id, signal.kind), []).append(signal)
    studies: list[Study] = []
    # Each follower's and leader's series is read once, whatever number of signal groups it is studied with.
    followers = {name: _Follower(closes) for name, closes in follower_closes.items()}
    leaders: dict[str, _Leader | None] = {}
    # Sorted and distinct (np.unique would load numpy's masked arrays, ~12 ms, for a few dozen days).
    flip_days = {name: np.array(sorted({day_number(d) for d in flips}), dtype=np.int64)
                 for name, flips in follower_flips.items()}
    for (leader, rule_id, kind), group in groups.items():
        group = sorted(group, key=lambda s: s.day)
        if leader not in leaders:
            series = leader_closes.get(leader)
            leaders[leader] = _Leader(series, horizons) if series is not None else None
        for follower_name in follower_closes:
            if follower_name == leader:
                continue
            studies.append(_study_one(leader, rule_id, kind, follower_name, group, leaders[leader],
                                      followers[follower_name], horizons, flip_days.get(follower_name)))
    return studies


def _study_one(
    leader: str, rule_id: str, kind: str, follower_name: str, group: list[Signal],
    leader_days: _Leader | None, follower: _Follower, horizons: tuple[int, ...],
    flip_days: np.ndarray | None = None,
) -> Study:
    starts = np.array([day_number(s.day) for s in group], dtype=np.int64)
    # Days from each signal to the follower's first flip strictly after it (-1: none, or no flip rule).
    flip_after = np.full(starts.shape, -1, dtype=np.int64)
    if flip_days is not None and flip_days.size:
        nxt = np.searchsorted(flip_days, starts, side="right")
        found = nxt < flip_days.size
        flip_after[found] = flip_days[nxt[found]] - starts[found]

    def flip_within(i: int, h: int) -> int | None:
        return int(flip_after[i]) if 0 <= flip_after[i] <= h else None

    outcomes: list[Outcome] = []
    rows: list[HorizonRow] = []
    counted = np.zeros(len(group), dtype=bool)
    per_horizon = follower.forward(starts, horizons)
    for forward in per_horizon.values():
        counted |= forward["has_entry"]
    years = None
    if counted.any():
        counted_days = [group[i].day for i in np.flatnonzero(counted)]
        years = (min(counted_days).year, max(counted_days).year)
    span = leader_days.baseline_span(years) if (leader_days is not None and years) else None
    baseline_starts = leader_days.days[span] if leader_days is not None and span is not None else np.zeros(0, np.int64)
    for h in horizons:
        f = per_horizon[h]
        for i, signal in enumerate(group):
            if not f["has_entry"][i]:
                outcomes.append(Outcome(signal.day, follower_name, h, "no_data"))
                continue
            entry_i, exit_i = int(f["entry"][i]), int(f["exit"][i])
            ath = int(f["ath_days"][i])
            if not f["ready"][i]:
                outcomes.append(Outcome(signal.day, follower_name, h, "not_yet", as_date(follower.days[entry_i]),
                                        float(follower.closes[entry_i]), needs_data_to=as_date(f["targets"][i]),
                                        ath_after_days=ath if ath >= 0 else None, flip_after_days=flip_within(i, h)))
                continue
            outcomes.append(Outcome(
                signal.day, follower_name, h, "ok", as_date(follower.days[entry_i]), float(follower.closes[entry_i]),
                as_date(follower.days[exit_i]), float(follower.closes[exit_i]), float(f["returns"][i]),
                ath_after_days=ath if ath >= 0 else None, flip_after_days=flip_within(i, h),
            ))
        pending = [o for o in outcomes if o.horizon == h and o.status == "not_yet"]
        base = leader_days.baseline(follower_name, follower, span, h) \
            if leader_days is not None and span is not None and baseline_starts.size else None
        test = None
        if base is not None:
            ready = f["ready"]
            positions = np.searchsorted(baseline_starts, starts[ready], side="right") - 1
            test = rotation_test(base["returns"], positions)
        rows.append(HorizonRow(
            h,
            Summary.of(f["returns"][f["ready"]]),
            Summary.of(base["returns"][base["ready"]]) if base is not None else Summary.of([]),
            len(pending),
            int(((f["ath_days"] >= 0) & f["has_entry"]).sum()),
            max((o.needs_data_to for o in pending if o.needs_data_to), default=None),
            None if flip_days is None else sum(1 for i in range(len(group))
                                               if f["has_entry"][i] and flip_within(i, h) is not None),
            test,
        ))
    longest = per_horizon[horizons[-1]] if horizons else None
    ath_days = tuple(
        (int(longest["ath_days"][i]) if longest is not None and longest["ath_days"][i] >= 0 else None)
        for i in range(len(group))
    )
    longest_h = horizons[-1] if horizons else 0
    flips = tuple(flip_within(i, longest_h) if counted[i] else None for i in range(len(group)))
    return Study(leader, rule_id, kind, follower_name, tuple(group), tuple(outcomes), tuple(rows), years,
                 int((~counted).sum()), ath_days, flips, flip_days is not None)


def follower_paths(signal_days: Sequence[date], closes: Closes, days: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (0..days, one row per signal of the follower's close indexed to 100 at entry; NaN past the data)."""
    follower = _Follower(closes)
    grid = np.arange(days + 1, dtype=np.int64)
    paths = np.full((len(signal_days), grid.size), np.nan)
    if follower.days.size == 0 or not len(signal_days):
        return grid, paths
    # All rows at once (a baseline passes every leader day of its years: thousands of rows).
    starts = np.array([day_number(day) for day in signal_days], dtype=np.int64)
    entry = np.searchsorted(follower.days, starts, side="right") - 1
    entered = (entry >= 0) & (starts - follower.days[np.maximum(entry, 0)] <= MAX_ENTRY_STALENESS_DAYS)
    targets = starts[:, None] + grid[None, :]
    known = entered[:, None] & (targets <= follower.days[-1])
    exits = np.searchsorted(follower.days, targets[known], side="right") - 1
    paths[known] = follower.closes[exits] / follower.closes[entry[np.nonzero(known)[0]]] * 100
    return grid, paths
