"""Replay throughput of `riskon replay` with the shipped config.yaml over the shared history: the whole process
(start-up, CSV reading, every default rule, the ALTS composite, the console), wall and CPU time, and peak RSS."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import market_data, median

RUNS = 3
CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"


def main() -> list[tuple[str, str]]:
    """Replay the shared history with the shipped config.yaml RUNS times into fresh databases; report medians."""
    folder = market_data()
    rates, seconds, cpu, peaks, summaries = [], [], [], [], set()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for run in range(RUNS):
            out = work / f"run{run}.out"
            started = time.perf_counter()
            with out.open("w") as stdout:
                child = subprocess.Popen(
                    [sys.executable, "-m", "bot", "replay", "--config", str(CONFIG), "--data", str(folder),
                     "--db", f"run{run}.db", "--speed", "max", "--log-level", "WARNING"],
                    cwd=work, stdout=stdout, stderr=subprocess.DEVNULL,
                    env={**os.environ, "PYTHONPATH": str(CONFIG.parent)},
                )
                # wait4 gives this child's own CPU and peak RSS (RUSAGE_CHILDREN would mix in other benchmarks').
                _, status, usage = os.wait4(child.pid, 0)
            elapsed = time.perf_counter() - started
            if status != 0:
                raise RuntimeError(f"replay run {run} failed with status {status}")
            summary = out.read_text().split("replay done: ", 1)[1].splitlines()[0]
            bars = int(summary.split(" bars", 1)[0].replace(",", ""))
            summaries.add(summary.split("), ", 1)[1])
            peaks.append(usage.ru_maxrss / 1024)
            seconds.append(elapsed)
            cpu.append(usage.ru_utime + usage.ru_stime)
            rates.append(bars / elapsed)
    return [
        ("replay (shipped config.yaml): bars replayed", f"{bars:,}, {' / '.join(sorted(summaries))}"),
        (f"replay: wall time, whole process (median of {RUNS})", f"{median(seconds):.2f} s"),
        (f"replay: CPU time, whole process (median of {RUNS}; the machine may be shared)", f"{median(cpu):.2f} s"),
        ("replay: throughput by wall time / by CPU time (target >= 20,000)",
         f"{median(rates):,.0f} / {bars / median(cpu):,.0f} bars/s"),
        (f"replay: peak RSS (median of {RUNS})", f"{median(peaks):.0f} MiB"),
    ]


if __name__ == "__main__":
    for name, value in main():
        print(f"{name:<50} {value}")
