"""Benchmark: every default rule backtested over every price file in RISKON_MARKET_DATA.

Figures: wall time of the backtest (rules through the live engine, event study, co-movement), the ratio to a
bare numpy pass over the same arrays (running maxima and daily returns: the least any backtest must do),
bars per second through the rules, and the process's peak RSS.

Every price file becomes a symbol. Each default rule keeps its kind and parameters and watches every symbol of
the same side of the market as the symbols it watches in config.yaml (equities or crypto), so "every default
rule over all files" is literal and the rule code is the one the bot runs.

Run alone:  RISKON_MARKET_DATA=../shared/data/market /work/venv/bin/python bench/bench_backtest.py
"""

from __future__ import annotations

import csv
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.backtest import backtest, load_csv_history  # noqa: E402
from bot.config import Config, SymbolConfig, load_config  # noqa: E402

RUNS = int(os.environ.get("RISKON_BENCH_RUNS", "1"))  # a full backtest takes seconds: one run unless asked
NUMPY_RUNS = 20
PRICE_HEADER = ["date", "open", "high", "low", "close", "volume"]


def price_files(folder: Path) -> list[Path]:
    """Return the CSVs in the folder with the OHLCV header (the shares-outstanding files are not prices)."""
    out = []
    for path in sorted(folder.glob("*.csv")):
        with path.open() as handle:
            if next(csv.reader(handle), []) == PRICE_HEADER:
                out.append(path)
    return out


def bench_config(folder: Path) -> Config:
    """Return the default config with every price file as a symbol and each rule widened to its side."""
    default = load_config(ROOT / "config.yaml", env={"RISKON_MARKET_DATA": str(folder)})
    by_stem = {s.csv_stem: s for s in default.symbols}
    feed = next(iter(default.feeds))
    symbols: list[SymbolConfig] = []
    for path in price_files(folder):
        known = by_stem.get(path.stem)
        if known is not None:
            symbols.append(known)
            continue
        crypto = "-USD" in path.stem or "USDT" in path.stem
        symbols.append(SymbolConfig(id=path.stem, feed=feed, csv=path.stem,
                                    asset_class="crypto" if crypto else "index"))
    classes = {s.id: s.asset_class for s in symbols}
    crypto_side = [s.id for s in symbols if s.asset_class in ("crypto", "composite")]
    equity_side = [s.id for s in symbols if s.asset_class not in ("crypto", "composite")]
    rules = []
    for rule in default.rules:
        side = crypto_side if all(classes.get(s) in ("crypto", "composite") for s in rule.symbols) else equity_side
        rules.append(rule.model_copy(update={"symbols": side}))
    computed = {name for name, f in default.feeds.items() if f.kind == "composite"}
    symbols += [s for s in default.symbols if s.feed in computed and s.id not in classes]
    return default.model_copy(update={"symbols": symbols, "rules": rules})


def numpy_floor(closes: list[np.ndarray]) -> float:
    """Return the median seconds of a bare numpy pass: running maximum and daily returns of every array."""
    times = []
    for _ in range(NUMPY_RUNS):
        started = time.perf_counter()
        for array in closes:
            np.maximum.accumulate(array)
            np.diff(array) / array[:-1]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> list[tuple[str, str]]:
    """Run the benchmark and return (figure, value) pairs."""
    folder = os.environ.get("RISKON_MARKET_DATA")
    if not folder:
        return [("backtest", "skipped: RISKON_MARKET_DATA is not set")]
    folder = Path(folder)
    config = bench_config(folder)
    history = load_csv_history(config, folder)
    bars = sum(len(b) for b in history.bars.values())
    closes = [np.array([b.close for b in series], dtype="float64") for series in history.bars.values()]
    rules_times, total_times, alerts = [], [], 0
    cpu_times = []
    for _ in range(RUNS):
        started, cpu = time.perf_counter(), time.process_time()
        result = backtest(config, history)
        total_times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu)
        rules_times.append(result.rules_seconds)
        alerts = len(result.alerts)
    floor = numpy_floor(closes)
    rules_s, total_s = statistics.median(rules_times), statistics.median(total_times)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kB
    return [
        ("backtest input", f"{len(history.bars)} symbols, {bars:,} daily bars, {len(config.rules)} rules, "
                           f"{sum(len(r.symbols) for r in config.rules)} rule-symbol pairs, {alerts} alerts"),
        (f"backtest wall time (median of {RUNS})", f"{total_s:.2f} s (of which the rules {rules_s:.2f} s)"),
        ("backtest CPU time (the machine may be shared)", f"{statistics.median(cpu_times):.2f} s"),
        (f"bare numpy pass (running max + returns, median of {NUMPY_RUNS})", f"{floor * 1000:.2f} ms"),
        ("backtest / numpy lower bound", f"{total_s / floor:,.0f}x"),
        ("bars per second through the rules", f"{bars / rules_s:,.0f}"),
        ("peak RSS", f"{peak_mb:.0f} MB"),
    ]


if __name__ == "__main__":
    for name, value in main():
        print(f"{name:<45} {value}")
