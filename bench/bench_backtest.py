"""Benchmark: every default rule backtested over every price file in RISKON_MARKET_DATA.

Figures: `riskon backtest --data` with the shipped config as a user runs it (whole process, wall and CPU) beside
bench/reference_backtest.py, a bare numpy script doing the same work (the same new-high signals, 7/30/90/180-day
forward returns and their baseline), in paired runs with the ratio; then a backtest with every default rule
widened to every file: wall time, bars per second through the rules, and peak RSS.

Every price file becomes a symbol. Each default rule keeps its kind and parameters and watches every symbol of
the same side of the market as the symbols it watches in config.yaml (equities or crypto), so "every default
rule over all files" is literal and the rule code is the one the bot runs.

Set BENCH_BACKTEST_BASELINE to another checkout to time its command in the same rounds (paired ratios).

Run alone:  RISKON_MARKET_DATA=../shared/data/market /work/venv/bin/python bench/bench_backtest.py
"""

from __future__ import annotations

import csv
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.backtest import backtest, load_csv_history  # noqa: E402
from bot.config import Config, SymbolConfig, load_config  # noqa: E402

RUNS = int(os.environ.get("RISKON_BENCH_RUNS", "1"))  # a full backtest takes seconds: one run unless asked
PAIRED_RUNS = int(os.environ.get("RISKON_BENCH_PAIRED_RUNS", "3"))
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


# Python caches compiled modules, and an install compiles them (pip): a user never compiles riskon's ~90 modules on
# a run. Sessions on this machine turn the cache off (PYTHONDONTWRITEBYTECODE), which would add that to every run:
# the timed processes keep their bytecode aside instead (the repository stays clean), compiled by an untimed run.
BYTECODE_CACHE = Path(tempfile.gettempdir()) / "riskon-bench-pycache"


def whole_process(argv: list[str], root: Path = ROOT) -> tuple[float, float, str]:
    """Run a checkout's command to its end; return its wall and own CPU seconds (wait4) and its last output line."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(root), PYTHONPYCACHEPREFIX=str(BYTECODE_CACHE))
    started = time.perf_counter()
    child = subprocess.Popen(argv, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)} failed with status {status}")
    lines = [line for line in out.splitlines() if line.strip()]
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime, lines[-1] if lines else ""


def _medians(times: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(w for w, _ in times), statistics.median(c for _, c in times)


def paired(folder: Path, runs: int) -> list[tuple[str, str]]:
    """Time `riskon backtest` (shipped config) against the numpy reference, and BENCH_BACKTEST_BASELINE's, paired."""
    def user(root: Path) -> list[str]:
        return [sys.executable, "-m", "bot", "backtest", "--data", str(folder), "--config", str(root / "config.yaml")]

    baseline = os.environ.get("BENCH_BACKTEST_BASELINE")
    cases: dict[str, tuple[list[str], Path]] = {
        "riskon": (user(ROOT), ROOT),
        "reference": ([sys.executable, str(ROOT / "bench" / "reference_backtest.py"), str(folder)], ROOT),
    }
    if baseline:
        cases["baseline"] = (user(Path(baseline).resolve()), Path(baseline).resolve())
    for argv, root in cases.values():
        whole_process(argv, root)  # untimed: compiles the bytecode, as an install would have
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    found = ""
    load_before = os.getloadavg()[0]
    for run in range(runs):
        order = list(cases) if run % 2 == 0 else list(reversed(cases))  # neither always first after a pause
        for name in order:
            wall, cpu, last = whole_process(*cases[name])
            times[name].append((wall, cpu))
            found = last if name == "reference" else found
    r_wall, r_cpu = _medians(times["riskon"])
    n_wall, n_cpu = _medians(times["reference"])
    ratio = statistics.median(w / n for (w, _), (n, _) in zip(times["riskon"], times["reference"]))
    cpu_ratio = statistics.median(c / n for (_, c), (_, n) in zip(times["riskon"], times["reference"]))
    rows = [
        (f"riskon backtest --data (shipped config), whole process, median of {runs}",
         f"{r_wall:.2f} s wall, {r_cpu:.2f} s CPU (target <= 2 s wall; bytecode cached, as installed)"),
        (f"numpy reference, same signals and 7/30/90/180-day returns ({found}), median of {runs}",
         f"{n_wall:.2f} s wall, {n_cpu:.2f} s CPU"),
        ("riskon backtest / numpy reference (paired runs; target <= 5)", f"{ratio:.1f}x wall, {cpu_ratio:.1f}x CPU"),
    ]
    if baseline:
        b_wall, b_cpu = _medians(times["baseline"])
        rows += [
            (f"baseline {baseline}, whole process, median of {runs}", f"{b_wall:.2f} s wall, {b_cpu:.2f} s CPU"),
            ("baseline / this checkout (medians of paired ratios)",
             f"{statistics.median(b[0] / r[0] for b, r in zip(times['baseline'], times['riskon'])):.3f} wall, "
             f"{statistics.median(b[1] / r[1] for b, r in zip(times['baseline'], times['riskon'])):.3f} CPU"),
        ]
    # Other work on the machine stretches wall times (and CPU times a little): the 1-minute load says how much.
    rows.append(("load average (1 min) before and after the paired runs",
                 f"{load_before:.1f}, {os.getloadavg()[0]:.1f}"))
    return rows


def phases(folder: Path) -> list[tuple[str, str]]:
    """Time the default backtest's parts in this process (CPU seconds): where the whole-process figure goes."""
    import contextlib
    import io

    from bot.backtest.console import print_report

    started = time.process_time()
    config = load_config(ROOT / "config.yaml", env={"RISKON_MARKET_DATA": str(folder)})
    loaded = time.process_time()
    history = load_csv_history(config, folder)
    read = time.process_time()
    result = backtest(config, history)  # the rules, then the study
    studied = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):  # the console the command makes when piped
        print_report(result)
    printed = time.process_time()
    rules = result.rules_cpu_seconds
    return [("riskon backtest (shipped config), its parts in process, CPU",
             f"config {loaded - started:.2f} s, history {read - loaded:.2f} s, rules {rules:.2f} s, "
             f"study {studied - read - rules:.2f} s, console report {printed - studied:.2f} s "
             f"({result.bar_count:,} bars, {len(result.alerts)} alerts)")]


def main() -> list[tuple[str, str]]:
    """Run the benchmark and return (figure, value) pairs."""
    folder = os.environ.get("RISKON_MARKET_DATA")
    if not folder:
        return [("backtest", "skipped: RISKON_MARKET_DATA is not set")]
    folder = Path(folder)
    rows = paired(folder, PAIRED_RUNS) + phases(folder)
    config = bench_config(folder)
    history = load_csv_history(config, folder)
    bars = sum(len(b) for b in history.bars.values())
    rules_times, total_times, alerts = [], [], 0
    cpu_times = []
    for _ in range(RUNS):
        started, cpu = time.perf_counter(), time.process_time()
        result = backtest(config, history)
        total_times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu)
        rules_times.append(result.rules_seconds)
        alerts = len(result.alerts)
    rules_s, total_s = statistics.median(rules_times), statistics.median(total_times)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kB
    return rows + [
        ("backtest, every rule widened to every file: input",
         f"{len(history.bars)} symbols, {bars:,} daily bars, {len(config.rules)} rules, "
         f"{sum(len(r.symbols) for r in config.rules)} rule-symbol pairs, {alerts} alerts"),
        (f"backtest, widened: wall time in process (median of {RUNS})",
         f"{total_s:.2f} s (of which the rules {rules_s:.2f} s), {statistics.median(cpu_times):.2f} s CPU"),
        ("backtest, widened: bars per second through the rules", f"{bars / rules_s:,.0f}"),
        ("backtest, widened: peak RSS", f"{peak_mb:.0f} MB"),
    ]


if __name__ == "__main__":
    for name, value in main():
        print(f"{name:<45} {value}")
