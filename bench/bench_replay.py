"""Replay throughput: bars per second through the whole pipeline (console output discarded), and peak RSS."""

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


def price_files(folder: Path) -> list[Path]:
    """Return every OHLCV file in the folder (the shares-outstanding files have other columns)."""
    return sorted(p for p in folder.glob("*.csv") if p.read_text().startswith("date,open,high,low,close"))


def write_config(folder: Path, work: Path) -> int:
    files = price_files(folder)
    symbols = "\n".join(f"  - {{id: \"{p.stem}\", feed: history, csv: \"{p.stem}\"}}" for p in files)
    ids = ", ".join(f'"{p.stem}"' for p in files)
    (work / "config.yaml").write_text(
        f"feeds:\n  history: {{kind: replay, path: \"{folder}\"}}\nsymbols:\n{symbols}\nrules:\n"
        f"  - {{id: ath, kind: new_ath, symbols: [{ids}]}}\n"
    )
    return sum(len(p.read_text().splitlines()) - 1 for p in files)


def main() -> list[tuple[str, str]]:
    """Replay every file in the market folder RUNS times into fresh databases; report medians."""
    folder = market_data()
    rates, seconds, peaks = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bars = write_config(folder, work)
        for run in range(RUNS):
            started = time.perf_counter()
            child = subprocess.Popen(
                [sys.executable, "-m", "bot", "replay", "--data", str(folder), "--db", f"run{run}.db", "--speed", "max"],
                cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            # wait4 gives this child's own peak RSS (RUSAGE_CHILDREN would mix in other benchmarks' children).
            _, status, usage = os.wait4(child.pid, 0)
            elapsed = time.perf_counter() - started
            if status != 0:
                raise RuntimeError(f"replay run {run} failed with status {status}")
            peaks.append(usage.ru_maxrss / 1024)
            seconds.append(elapsed)
            rates.append(bars / elapsed)
    return [
        ("replay: bars replayed", f"{bars:,} from {len(price_files(folder))} files"),
        ("replay: wall time (median of 3, incl. start-up)", f"{median(seconds):.1f} s"),
        ("replay: throughput (median)", f"{median(rates):,.0f} bars/s"),
        ("replay: peak RSS (median of 3)", f"{median(peaks):.0f} MiB"),
    ]


if __name__ == "__main__":
    for name, value in main():
        print(f"{name:<50} {value}")
