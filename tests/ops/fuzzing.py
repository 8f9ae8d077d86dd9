"""Hypothesis settings the fuzz tests share: CI's example counts, scaled up on demand for a deeper search."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# RISKON_FUZZ_DEPTH=3 runs three times CI's examples (what CI ran before the suite had to fit in minutes).
DEPTH = float(os.environ.get("RISKON_FUZZ_DEPTH", "1"))
FUZZ = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def cases(ci: int) -> int:
    """Return how many examples a property gets: `ci` in CI, times RISKON_FUZZ_DEPTH."""
    return max(1, round(ci * DEPTH))
