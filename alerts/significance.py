"""Is a signal's median return better than chance? A rotation test that keeps overlapping windows honest.

The question: "if the same signals, with the same count and the same spacing, had started on other days of the
same years, how often would their median forward return have done at least as well?" The answer is a circular
shift (rotation) test. The start days of the period form a ring of T days; the signals sit at positions
p_1..p_n on it. Each of the T - 1 rotations p_i + k (mod T) is a pattern with exactly the same count, the same
gaps between signals, and so the same overlap between their forward windows, only placed elsewhere in time.
The observed effect (signals' median minus the median of every start day) is ranked among the rotations'.

Why not resample days one by one: forward windows of 90 or 180 days starting close together share most of their
path, and signals come in clusters, so n signals carry far less information than n independent draws. An i.i.d.
test would call noise significant far too often; a rotation moves the cluster as a whole. See docs/backtest.md.

The interval inverts the test under a shift model (the signals' returns are the baseline's plus a constant):
effect - the rotations' 97.5th percentile .. effect - their 2.5th. Pure numpy; every rotation is used when there
are at most MAX_ROTATIONS, else a seeded sample of them, so a figure never changes between runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SIGNALS = 8  # fewer and the median is one or two episodes: "too few signals", no verdict
MIN_START_DAYS = 250  # about a trading year of start days: fewer rotations cannot tell chance apart
ALPHA = 0.05  # two-sided: a verdict needs p below this
MAX_ROTATIONS = 5000
SEED = 20201113  # the ^RUT high of 2020-11-13: any fixed number; fixed so reports reproduce


@dataclass(frozen=True)
class Significance:
    """The rotation test of one leader -> follower -> horizon: n, effect, interval, p-value and the verdict."""

    n: int  # signals with a known return
    start_days: int  # start days in the ring (the baseline)
    effect: float | None  # signals' median minus every start day's median, percentage points
    low: float | None  # 95% interval of the effect
    high: float | None
    p_value: float | None  # two-sided
    p_better: float | None  # share of rotations at least as good as the signals (one-sided)
    verdict: str  # "better than chance" | "worse than chance" | "no evidence" | "too few signals"

    @property
    def decided(self) -> bool:
        """Say whether the evidence supports a verdict either way."""
        return self.verdict in ("better than chance", "worse than chance")


def median(values: np.ndarray) -> float:
    """Return the median of known values (at least one) to the bit as np.median gives it.

    np.median looks for numpy's masked arrays on every call, which loads them (~12 ms of a backtest's start).
    """
    low, high = (values.size - 1) // 2, values.size // 2
    middle = np.partition(values, [low, high])
    # The middle one, or the mean of the middle two: their sum over two, as np.median's mean of them is.
    return float(middle[low]) if low == high else (float(middle[low]) + float(middle[high])) / 2


def quantiles(values: np.ndarray, shares: list[float]) -> np.ndarray:
    """Return quantiles of known values (at least one) to the bit as np.quantile's default (linear) method does.

    np.quantile sorts its positions with np.unique, which loads numpy's masked arrays as np.median does.
    """
    ordered = np.sort(values)
    virtual = (values.size - 1) * np.asarray(shares, dtype=np.float64)
    below = np.floor(virtual)
    above = below + 1
    below[virtual >= values.size - 1] = above[virtual >= values.size - 1] = -1  # past the end: the largest
    below[virtual < 0] = above[virtual < 0] = 0
    weight = virtual - below
    low, high = ordered[below.astype(np.intp)], ordered[above.astype(np.intp)]
    step = high - low
    # From the nearer end, as numpy interpolates (the same figures to the last bit).
    return np.where(weight >= 0.5, high - step * (1 - weight), low + step * weight)


def rotation_test(
    start_returns: np.ndarray,
    signal_positions: np.ndarray,
    *,
    min_signals: int = MIN_SIGNALS,
    alpha: float = ALPHA,
    max_rotations: int = MAX_ROTATIONS,
    seed: int = SEED,
) -> Significance:
    """Test the signals' median forward return against every rotation of their pattern over the start days.

    `start_returns`: the forward return of every start day of the period, in time order (NaN: unknown yet).
    `signal_positions`: the signals' indices into it.
    """
    returns = np.asarray(start_returns, dtype="float64")
    known = np.isfinite(returns)
    # Sorted and distinct (np.unique would load numpy's masked arrays, ~12 ms, for a few dozen positions).
    positions = np.array(sorted(set(np.asarray(signal_positions, dtype=np.int64).tolist())), dtype=np.int64)
    positions = positions[(positions >= 0) & (positions < returns.size)]
    positions = positions[known[positions]]
    # The ring is the start days whose return is known: a signal's window and its rotations' are all complete.
    ring_index = np.cumsum(known) - 1
    ring = returns[known]
    n, size = int(positions.size), int(ring.size)
    if n == 0 or size == 0:
        return Significance(n, size, None, None, None, None, None, "too few signals")
    where = ring_index[positions]
    baseline = median(ring)
    effect = median(ring[where]) - baseline
    if n < min_signals or size < MIN_START_DAYS or n * 2 > size:
        return Significance(n, size, effect, None, None, None, None, "too few signals")
    shifts = np.arange(1, size, dtype=np.int64)
    if shifts.size > max_rotations:
        shifts = np.random.default_rng(seed).choice(shifts, size=max_rotations, replace=False)
    # One row per rotation: the rotated signals' returns (the ring laid twice: no wrapping); a median per row,
    # all at once. Rows are short: sorting them and taking the mean of the middle one or two, as np.median does
    # after its partition, gives its very figures about four times faster.
    rotated = np.sort(np.concatenate((ring, ring))[where[None, :] + shifts[:, None]], axis=1)
    null = rotated[:, (n - 1) // 2: n // 2 + 1].mean(axis=1) - baseline
    count = null.size
    # Phipson & Smyth (2010): the observed pattern is one of the rotations, so p is never 0.
    p_better = float((np.count_nonzero(null >= effect) + 1) / (count + 1))
    p_worse = float((np.count_nonzero(null <= effect) + 1) / (count + 1))
    p_value = min(1.0, 2 * min(p_better, p_worse))
    upper, lower = quantiles(null, [1 - alpha / 2, alpha / 2])
    low, high = effect - float(upper), effect - float(lower)
    verdict = "no evidence"
    if p_value < alpha:
        verdict = "better than chance" if effect > 0 else "worse than chance"
    return Significance(n, size, effect, low, high, p_value, p_better, verdict)


def naive_test(start_returns: np.ndarray, signal_positions: np.ndarray, draws: int = 2000,
               seed: int = SEED) -> float:
    """Return the two-sided p-value of drawing start days one by one (the test that ignores overlap; for contrast)."""
    returns = np.asarray(start_returns, dtype="float64")
    ring = returns[np.isfinite(returns)]
    chosen = returns[np.asarray(signal_positions, dtype=np.int64)]
    chosen = chosen[np.isfinite(chosen)]
    baseline = float(np.median(ring))
    effect = float(np.median(chosen)) - baseline
    rng = np.random.default_rng(seed)
    null = np.median(ring[rng.integers(0, ring.size, size=(draws, chosen.size))], axis=1) - baseline
    p_better = (np.count_nonzero(null >= effect) + 1) / (draws + 1)
    p_worse = (np.count_nonzero(null <= effect) + 1) / (draws + 1)
    return float(min(1.0, 2 * min(p_better, p_worse)))
