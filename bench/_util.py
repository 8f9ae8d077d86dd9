"""Helpers shared by the benchmarks: where the market data is, medians, peak RSS of children."""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def market_data() -> Path:
    """Return the market data folder from RISKON_MARKET_DATA (or ../shared/data/market)."""
    folder = Path(os.environ.get("RISKON_MARKET_DATA") or REPO.parent / "shared" / "data" / "market")
    if not folder.is_dir():
        sys.exit(f"market data folder {folder} not found: set RISKON_MARKET_DATA")
    return folder


def median(values: list[float]) -> float:
    """Return the median."""
    return statistics.median(values)
