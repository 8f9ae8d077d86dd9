"""Replay throughput: bars per second through the whole pipeline (console output discarded), and peak RSS."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import children_peak_rss_mb, market_data, median  # noqa: E402

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
    rates, seconds = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bars = write_config(folder, work)
        for run in range(RUNS):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "bot", "replay", "--data", str(folder), "--db", f"run{run}.db", "--speed", "max"],
                cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
            )
            elapsed = time.perf_counter() - started
            seconds.append(elapsed)
            rates.append(bars / elapsed)
    return [
        ("replay: bars replayed", f"{bars:,} from {len(price_files(folder))} files"),
        ("replay: wall time (median of 3, incl. start-up)", f"{median(seconds):.1f} s"),
        ("replay: throughput (median)", f"{median(rates):,.0f} bars/s"),
        ("replay: peak RSS", f"{children_peak_rss_mb():.0f} MiB"),
    ]


if __name__ == "__main__":
    for name, value in main():
        print(f"{name:<50} {value}")
