"""Benchmark: a 27-combination sweep of signal definitions over the shared data (the default config).

    --sweep smallcap_ath.rearm_pct=1,2,5 --sweep smallcap_ath.min_gap_days=15,30,60
    --sweep smallcap_flip.break_pct=0.25,0.5,1

Figures: wall time of the sweep (after the plain backtest it builds on), time per combination, how many rule
replays it needed and in how many processes, and the study's own share (the rotation tests of every combination).

Run alone:  RISKON_MARKET_DATA=../shared/data/market /work/venv/bin/python bench/bench_sweep.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.backtest import backtest, load_csv_history  # noqa: E402
from bot.backtest.sweep import parse_sweep, run_sweep  # noqa: E402
from bot.config import load_config  # noqa: E402

GRID = ["smallcap_ath.rearm_pct=1,2,5", "smallcap_ath.min_gap_days=15,30,60", "smallcap_flip.break_pct=0.25,0.5,1"]


def main() -> list[tuple[str, str]]:
    """Run the benchmark and return (figure, value) pairs."""
    folder = os.environ.get("RISKON_MARKET_DATA")
    if not folder:
        return [("sweep", "skipped: RISKON_MARKET_DATA is not set")]
    config = load_config(ROOT / "config.yaml", env={"RISKON_MARKET_DATA": folder})
    history = load_csv_history(config, folder)
    result = backtest(config, history)
    grid = parse_sweep(config, GRID)
    workers = os.cpu_count() or 1
    started, cpu = time.perf_counter(), time.process_time()
    sweep = run_sweep(config, history, result, grid, workers)
    wall = time.perf_counter() - started
    replays = len({row.label for row in sweep.rows})
    return [
        ("sweep grid", f"{sweep.combinations} combinations: " + " x ".join(GRID)),
        (f"sweep wall time ({sweep.workers} processes)", f"{wall:.1f} s, {wall / sweep.combinations:.2f} s per "
                                                          f"combination"),
        ("sweep rule replays (one per value of a rule's own parameters)", f"{replays}"),
        ("sweep rows / tests corrected (Benjamini-Hochberg)", f"{len(sweep.rows)} / {sweep.tests}"),
        ("sweep parent CPU time (assembling, studies, tests)", f"{time.process_time() - cpu:.2f} s"),
        ("plain backtest before it (for scale)", f"{result.seconds:.1f} s"),
    ]


if __name__ == "__main__":
    for name, value in main():
        print(f"{name:<62} {value}")
