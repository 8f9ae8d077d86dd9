"""A sweep over signal definitions: one row per combination, signal, follower and horizon, corrected for trying many.

Trying 27 definitions and keeping the best is itself a test: at a 5% level one of twenty noise rows looks good.
The rows' p-values are adjusted with Benjamini-Hochberg (the false discovery rate; valid when the tests are
positively dependent, as overlapping definitions over the same history are: Benjamini & Yekutieli 2001).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alerts.significance import ALPHA


@dataclass(frozen=True)
class SweepRow:
    """The rotation test of one parameter combination for one signal, follower and horizon."""

    params: tuple[tuple[str, str], ...]  # ("smallcap_ath.rearm_pct", "2"), ...
    signal: str  # e.g. "^RUT new ath (smallcap_ath)"
    follower: str
    horizon: int
    n: int
    effect: float | None
    p_value: float | None
    q_value: float | None = None  # Benjamini-Hochberg adjusted
    verdict: str = ""

    @property
    def label(self) -> str:
        """Return the combination in words: 'smallcap_ath.rearm_pct=2, smallcap_flip.break_pct=0.5'."""
        return ", ".join(f"{k}={v}" for k, v in self.params)


@dataclass(frozen=True)
class Sweep:
    """Every row of a sweep, its correction, and whether the best row is likely luck."""

    grid: tuple[tuple[str, tuple[str, ...]], ...]  # the swept parameters and their values
    rows: tuple[SweepRow, ...]  # sorted by p-value, untestable rows last
    tests: int  # rows with a p-value: what the correction counts
    seconds: float
    workers: int
    correction: str = "Benjamini-Hochberg"

    @property
    def combinations(self) -> int:
        """Return how many parameter combinations ran."""
        return int(np.prod([len(values) for _, values in self.grid])) if self.grid else 0

    def warning(self) -> str:
        """Say plainly whether the best row survives the correction for the number of tests."""
        tested = [r for r in self.rows if r.p_value is not None]
        if not tested:
            return "no row had enough signals for a test"
        best = tested[0]
        if best.q_value is not None and best.q_value < ALPHA:
            return (f"the best row (p {best.p_value:.3f}) survives the correction for {self.tests} tests "
                    f"(q {best.q_value:.3f})")
        return (f"the best row is likely luck: p {best.p_value:.3f} alone, but after correcting for the {self.tests} "
                f"tests of this sweep q {best.q_value:.2f}; about {self.tests * ALPHA:.0f} rows would reach p < "
                f"{ALPHA} by chance alone")


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Return Benjamini-Hochberg adjusted p-values (q-values) in the input's order; NaN stays NaN."""
    p = np.asarray(p_values, dtype="float64")
    q = np.full(p.shape, np.nan)
    known = np.flatnonzero(np.isfinite(p))
    if known.size == 0:
        return q
    order = known[np.argsort(p[known], kind="stable")]
    m = order.size
    ranked = p[order] * m / np.arange(1, m + 1)
    # Step-up: each q is the smallest adjusted value at its rank or above.
    q[order] = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    return q


def _after_correction(verdict: str, q: float) -> str:
    """Keep a row's verdict only when it survives the correction; say so when it does not."""
    if verdict in ("better than chance", "worse than chance") and not (np.isfinite(q) and q < ALPHA):
        return f"no evidence after correction ({verdict.split()[0]} alone)"
    return verdict


def corrected(rows: list[SweepRow]) -> tuple[tuple[SweepRow, ...], int]:
    """Return the rows with q-values, best first, and the number of tests corrected for."""
    q = benjamini_hochberg(np.array([np.nan if r.p_value is None else r.p_value for r in rows]))
    out = [SweepRow(r.params, r.signal, r.follower, r.horizon, r.n, r.effect, r.p_value,
                    None if not np.isfinite(qv) else float(qv), _after_correction(r.verdict, qv))
           for r, qv in zip(rows, q)]
    out.sort(key=lambda r: (r.p_value is None, r.p_value if r.p_value is not None else 1.0, -(r.n or 0)))
    return tuple(out), int(np.isfinite(q).sum())
