"""Co-movement and lead/lag of a leader's and a follower's returns: pure functions over closes.

Co-movement: returns are taken on the leader's trading days; the follower's close is sampled on each of those days,
so a Monday return covers the weekend for both. Rolling windows are calendar windows (30 and 90 days).

Lead/lag: the leader's return over each of its periods (a trading day, or a week ending on its last trading day)
beside the follower's return over the same calendar span moved by k days, for k = -30..+30. A positive k reads
"the follower k days after the leader": a peak there means small caps lead. The follower's close on any calendar
day is its last close at or before that day (crypto trades every day, so that is its own close).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from alerts.closes import Closes

DEFAULT_WINDOWS = (30, 90)
ROLLING_BLOCK = 512  # days of rolling windows computed at once
LAGS = tuple(range(-30, 31))
# Beyond this |r| one lag of white noise is off by chance about once in a thousand (3.29 standard errors):
# with 61 lags looked at, the band keeps "a lag stands out" to about one false call in sixteen.
NOISE_Z = 3.29


@dataclass(frozen=True)
class YearRow:
    """Co-movement of one follower with the leader in one calendar year."""

    year: int
    days: int  # daily return pairs in the year
    correlation: float | None  # of the year's daily returns
    mean_rolling: tuple[float | None, ...]  # mean of each rolling window's correlation over the year


@dataclass(frozen=True)
class CoMovement:
    """Rolling correlation of a follower's daily returns with the leader's, and a table by year."""

    leader: str
    follower: str
    windows: tuple[int, ...]
    rolling_days: np.ndarray  # day numbers of the leader trading days with a return pair
    rolling: np.ndarray  # one row per day of rolling_days, one column per window; NaN: too few pairs yet
    years: tuple[YearRow, ...]
    overall: float | None
    days: int


class Returns(NamedTuple):
    """Daily return pairs: the day numbers they end on, the leader's returns and the follower's."""

    days: np.ndarray
    leader: np.ndarray
    follower: np.ndarray


def aligned_returns(leader: Closes, follower: Closes) -> Returns:
    """Return daily returns of leader and follower on the leader's trading days where both have a close that day."""
    leader, follower = leader.known(), follower.known()
    at = np.searchsorted(follower.days, leader.days)
    safe = np.minimum(at, max(follower.days.size - 1, 0))
    both = (at < follower.days.size) & (follower.days[safe] == leader.days) if follower.days.size else \
        np.zeros(leader.days.size, dtype=bool)
    days, ours, theirs = leader.days[both], leader.values[both], follower.values[safe[both]]
    # A return between two sampled days spans the same calendar interval for both series.
    with np.errstate(divide="ignore", invalid="ignore"):
        leader_returns, follower_returns = ours[1:] / ours[:-1] - 1, theirs[1:] / theirs[:-1] - 1
    # Skip a gap (e.g. a missing follower day) longer than a long weekend: that is not a daily return.
    keep = (np.diff(days) <= 5) & np.isfinite(leader_returns) & np.isfinite(follower_returns)
    return Returns(days[1:][keep], leader_returns[keep], follower_returns[keep])


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Return the correlation of two equally long arrays without missing values (NaN when either is flat).

    Scaled as pandas' Series.corr scales it (pandas 3), so the figures stay those the study showed with it.
    """
    if x.size < 2:
        return float("nan")
    x, y = x - x.mean(), y - y.mean()
    x_scale, y_scale = np.max(np.abs(x)), np.max(np.abs(y))
    if x_scale == 0 or y_scale == 0:
        return float("nan")
    x, y = x / x_scale, y / y_scale
    fact = x.size - 1
    x_divisor = np.sqrt(np.dot(x, x) / fact)
    y_divisor = np.sqrt(np.dot(y, y) / fact)
    if x_divisor == 0 or y_divisor == 0:
        return float("nan")
    return float(np.clip(np.dot(x, y) / fact / x_divisor / y_divisor, -1.0, 1.0))


def rolling_correlation(days: np.ndarray, x: np.ndarray, y: np.ndarray, window_days: int,
                        min_pairs: int) -> np.ndarray:
    """Return, on each day, the correlation of the pairs of the last `window_days` calendar days (that day included).

    Each window is centred on its own means before the products are summed (no running sums of squares, which
    lose digits over decades of history); NaN where a window has fewer than `min_pairs` pairs or no spread.
    """
    first = np.searchsorted(days, days - window_days, side="right")
    count = np.arange(1, days.size + 1) - first
    out = np.full(days.size, np.nan)
    if not days.size:
        return out
    # One row per day: its window's pairs from `first` on, then zeros up to the longest window's length (every row
    # the same length, so each sum adds the same way whatever block it is in).
    width = int(count.max())
    x_from = sliding_window_view(np.concatenate((x, np.zeros(width))), width)
    y_from = sliding_window_view(np.concatenate((y, np.zeros(width))), width)
    r = np.empty(days.size)
    # Blocks of rows: the temporaries stay small (a few hundred kB, not tens of MB the system must hand over).
    for start in range(0, days.size, ROLLING_BLOCK):
        block = slice(start, start + ROLLING_BLOCK)
        n = count[block]
        inside = np.arange(width)[None, :] < n[:, None]
        xs, ys = np.where(inside, x_from[first[block]], 0.0), np.where(inside, y_from[first[block]], 0.0)
        xs = np.where(inside, xs - (xs.sum(axis=1) / n)[:, None], 0.0)
        ys = np.where(inside, ys - (ys.sum(axis=1) / n)[:, None], 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r[block] = (xs * ys).sum(axis=1) / np.sqrt((xs * xs).sum(axis=1) * (ys * ys).sum(axis=1))
    enough = (count >= min_pairs) & np.isfinite(r)
    out[enough] = np.clip(r[enough], -1.0, 1.0)
    return out


def _mean(values: np.ndarray) -> float | None:
    known = np.isfinite(values)
    return float(np.where(known, values, 0.0).sum() / known.sum()) if known.any() else None


def comovement(
    leader_name: str, leader: Closes, follower_name: str, follower: Closes,
    windows: Sequence[int] = DEFAULT_WINDOWS,
) -> CoMovement:
    """Compute rolling calendar-window correlations of daily returns and summarise them by year."""
    windows = tuple(int(w) for w in windows)
    days, x, y = aligned_returns(leader, follower)
    # Half a window's worth of trading days (about 0.35 per calendar day) before a figure is shown.
    rolling = np.column_stack([rolling_correlation(days, x, y, w, max(5, int(w * 5 / 7 * 0.5))) for w in windows]) \
        if windows else np.zeros((days.size, 0))
    years = []
    # The returns are in time order: each year is one run of rows.
    year_of = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    bounds = np.flatnonzero(np.diff(year_of)) + 1
    for first, last in zip(np.concatenate(([0], bounds)), np.concatenate((bounds, [year_of.size]))):
        if first == last:
            continue
        corr = pearson(x[first:last], y[first:last]) if last - first >= 10 else np.nan
        means = tuple(_mean(rolling[first:last, column]) for column in range(len(windows)))
        years.append(YearRow(int(year_of[first]), int(last - first), _finite(corr), means))
    overall = pearson(x, y) if days.size >= 10 else np.nan
    return CoMovement(leader_name, follower_name, windows, days, rolling, tuple(years), _finite(overall),
                      int(days.size))


def _finite(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _period_ends(leader: Closes, period: str) -> np.ndarray:
    """Return the day numbers closing each leader period: every trading day, or each week's last trading day."""
    days = leader.days
    if period == "day":
        return days
    weeks = (days + 3) // 7  # 1970-01-01 was a Thursday: weeks run Monday..Sunday
    last = np.append(weeks[1:] != weeks[:-1], True)
    return days[last]


def _close_at(series: Closes, at: np.ndarray) -> np.ndarray:
    """Return the last close at or before each day (NaN before the first, or when older than 5 days)."""
    days = series.days
    if not days.size:
        return np.full(at.shape, np.nan)
    # Each calendar day's answer from the first close to the last day one can still use it, looked up once: the
    # days asked for (lags x periods) are then one lookup each, not a search, a staleness test and two gathers.
    every_day = np.arange(days[0], days[-1] + 6, dtype=np.int64)
    last = np.searchsorted(days, every_day, side="right") - 1
    by_day = np.where(every_day - days[last] > 5, np.nan, series.values[last])
    offset = at - days[0]
    inside = (offset >= 0) & (offset < by_day.size)
    return np.where(inside, by_day[np.minimum(np.maximum(offset, 0), by_day.size - 1)], np.nan)


def lagged_returns(leader: Closes, follower: Closes, lags: Sequence[int] = LAGS,
                   period: str = "day") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (period end days, the leader's returns, the follower's returns moved by each lag: lags x periods)."""
    leader, follower = leader.known(), follower.known()
    ends = _period_ends(leader, period)
    follower_days = follower.days
    if follower_days.size:  # periods a lag can never reach the follower's data from are dropped up front
        reach = max(abs(int(k)) for k in lags) + 14
        ends = ends[(ends >= follower_days[0] - reach) & (ends <= follower_days[-1] + reach)]
    close = _close_at(leader, ends)
    leader_returns = close[1:] / close[:-1] - 1
    starts, ends = ends[:-1], ends[1:]
    # A gap longer than a long weekend (or a week and a holiday) is not one period's return.
    longest = 5 if period == "day" else 12
    keep = (ends - starts) <= longest
    shifts = np.asarray(lags, dtype=np.int64)[:, None]
    # Each period starts where the previous one ended: the follower's closes are looked up once per end.
    at = _close_at(follower, np.append(starts[:1], ends)[None, :] + shifts)
    moved = at[:, 1:] / at[:, :-1] - 1
    return ends[keep], leader_returns[keep], moved[:, keep]


def _windowed_correlation(x: np.ndarray, y: np.ndarray, first: np.ndarray, last: np.ndarray,
                          min_pairs: np.ndarray | int) -> np.ndarray:
    """Return the correlation of x with each row of y over periods first[w]:last[w], all windows at once.

    Running sums of x, y, x², y², xy and the pair count (both known) make each window two lookups: lags x windows.
    """
    both = np.isfinite(y) & np.isfinite(x)[None, :]
    rows, size = y.shape
    # One buffer, one cumulative sum along time for all six (each row starts at 0: a window is two lookups).
    totals = np.zeros((6, rows, size + 1))
    count, xs, ys, xx, yy, xy = (totals[i, :, 1:] for i in range(6))
    count[...] = both
    np.copyto(xs, x[None, :], where=both)
    np.copyto(ys, y, where=both)
    np.multiply(xs, xs, out=xx)
    np.multiply(ys, ys, out=yy)
    np.multiply(xs, ys, out=xy)
    np.cumsum(totals, axis=2, out=totals)
    n, sx, sy, sxx, syy, sxy = totals[:, :, last] - totals[:, :, first]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (n * sxy - sx * sy) / np.sqrt((n * sxx - sx * sx) * (n * syy - sy * sy))
    limit = np.broadcast_to(np.asarray(min_pairs), (len(first),))
    return np.where(n >= limit[None, :], r, np.nan)


@dataclass(frozen=True)
class LeadLag:
    """Cross-correlation of a leader's and a follower's returns at lags -30..+30 days, overall and over time."""

    leader: str
    follower: str
    period: str  # "day" | "week"
    lags: tuple[int, ...]
    overall: tuple[float | None, ...]  # one per lag
    pairs: int
    since: tuple[tuple[str, tuple[float | None, ...]], ...]  # ("before 2020", ...), ("since 2020", ...)
    rolling_ends: tuple[int, ...]  # day numbers: the last day of each rolling window
    rolling: np.ndarray  # windows x lags; NaN where too few pairs

    @property
    def overlap_days(self) -> int:
        """Return the lags that share calendar days with the same-day window (not evidence of timing).

        A Monday return spans the weekend (3 days), a weekly return 7: a follower window moved by fewer days
        overlaps the leader's own, so a peak there is moving together, not one leading the other.
        """
        return 3 if self.period == "day" else 6

    @property
    def band(self) -> float | None:
        """Return the |r| that one lag of pure noise exceeds about once in a thousand."""
        return NOISE_Z / np.sqrt(self.pairs) if self.pairs else None

    def peak(self, side: str) -> tuple[int, float] | None:
        """Return the lag and r of the largest |r| on a side: "leads" (k > 0), "follows" (k < 0) or "same" (0)."""
        pick = [(k, r) for k, r in zip(self.lags, self.overall) if r is not None and
                ((side == "leads" and k > 0) or (side == "follows" and k < 0) or (side == "same" and k == 0))]
        return max(pick, key=lambda item: abs(item[1])) if pick else None

    def reading(self) -> str:
        """Say in words whether the leader leads, follows, or neither, beyond noise."""
        band = self.band
        if band is None or not any(r is not None for r in self.overall):
            return "too few return pairs"
        near = self.overlap_days
        outside = [(k, r) for k, r in zip(self.lags, self.overall) if r is not None and abs(k) > near and abs(r) > band]
        if not outside:
            return f"no lead or lag beyond noise (|r| <= {band:.2f} at every lag beyond {near} days)"
        k, r = max(outside, key=lambda item: abs(item[1]))
        who = f"{self.leader} leads by {k} days" if k > 0 else f"{self.follower} leads by {-k} days"
        return f"{who} (r {r:+.2f}, noise band {band:.2f})"


def _values(r: np.ndarray) -> tuple[float | None, ...]:
    return tuple(v if math.isfinite(v) else None for v in r.tolist())


def lead_lag(leader_name: str, leader: Closes, follower_name: str, follower: Closes, period: str = "day",
             lags: Sequence[int] = LAGS, window_days: int = 365, step_days: int = 30,
             split_year: int = 2020) -> LeadLag:
    """Cross-correlate returns at each lag over the whole history, before and since `split_year`, and rolling."""
    lags = tuple(int(k) for k in lags)
    ends, x, y = lagged_returns(leader, follower, lags, period)
    min_pairs = 30 if period == "day" else 20
    known = np.isfinite(x)
    split = int(np.searchsorted(ends, int(np.datetime64(f"{split_year}-01-01", "D").astype(np.int64))))
    both = np.isfinite(y[lags.index(0)] if 0 in lags else y[0]) & known
    pairs = int(both.sum())
    rolling_ends: list[int] = []
    first = [0, 0, split]  # the whole history, before the split year, since it; then each rolling window
    last = [ends.size, split, ends.size]
    minimum = [min_pairs] * 3
    if ends.size:
        rolling_ends = list(range(int(ends[0]) + window_days, int(ends[-1]) + step_days, step_days))
        window_end = np.asarray(rolling_ends, dtype=np.int64)
        first += list(np.searchsorted(ends, window_end - window_days, side="right"))
        last += list(np.searchsorted(ends, window_end, side="right"))
        # A year's window needs about 100 daily (30 weekly) pairs.
        minimum += [100 if period == "day" else 30] * len(rolling_ends)
    every = _windowed_correlation(x, y, np.asarray(first), np.asarray(last), np.asarray(minimum)).T
    overall = every[0]
    since = ((f"before {split_year}", _values(every[1])), (f"since {split_year}", _values(every[2])))
    rolling = every[3:]
    # Windows before the follower traded (or after it stopped) are empty: keep the span that has figures.
    filled = np.flatnonzero(np.isfinite(rolling).any(axis=1)) if rolling.size else np.zeros(0, dtype=np.int64)
    if filled.size:
        rolling = rolling[filled[0]: filled[-1] + 1]
        rolling_ends = rolling_ends[filled[0]: filled[-1] + 1]
    else:
        rolling, rolling_ends = np.zeros((0, len(lags))), []
    return LeadLag(leader_name, follower_name, period, lags, _values(overall), pairs, since, tuple(rolling_ends),
                   rolling)
