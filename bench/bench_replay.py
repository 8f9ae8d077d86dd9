"""Replay throughput of `riskon replay` with the shipped config.yaml over the shared history: the whole process
(start-up, CSV reading, every default rule, the ALTS composite, the console), wall and CPU time, and peak RSS.

Set BENCH_REPLAY_BASELINE to another checkout of riskon (e.g. `git worktree add /tmp/before <commit>`) to pair
each run with one of that checkout, alternating, and print both medians and their ratio: on a machine shared
with other work, only paired runs compare.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import market_data, median

RUNS = 5
REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config.yaml"


class PeakRss:
    """Follow a child's own peak RSS (VmHWM) while it runs.

    Not wait4's ru_maxrss: Linux starts a forked child's figure at its parent's RSS, so after the other benches had
    grown `bench/run.py` to 270 MB, every replay "peaked" there (a 68 MB replay read 273 MiB). VmHWM belongs to the
    process's own memory since exec, and only grows, so the last reading before exit is its peak but for the
    final 10 ms.
    """

    def __init__(self, pid: int) -> None:
        self.status, self.kib = Path(f"/proc/{pid}/status"), 0
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        while True:
            try:
                text = self.status.read_text()
            except OSError:  # the child has exited (or been reaped)
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    self.kib = max(self.kib, int(line.split()[1]))
            time.sleep(0.01)

    def mib(self) -> float:
        """Return the highest peak read, in MiB."""
        return self.kib / 1024


class Runs:
    """One checkout's replays: wall and CPU seconds, bars/s, peak RSS, and the summary they all printed."""

    def __init__(self, checkout: Path, work: Path, name: str) -> None:
        self.checkout, self.work, self.name = checkout, work, name
        self.seconds: list[float] = []
        self.cpu: list[float] = []
        self.peaks: list[float] = []
        self.summaries: set[str] = set()
        self.bars = 0
        # Modules compiled once, as an installed riskon has them (this machine may set PYTHONDONTWRITEBYTECODE,
        # which would make every run compile riskon's sources again); kept apart from the checkout.
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env.update(PYTHONPATH=str(checkout), PYTHONPYCACHEPREFIX=str(work / f"pycache-{name}"))
        subprocess.run([sys.executable, "-m", "compileall", "-q", "alerts", "bot", "storage"], cwd=checkout,
                       env=self.env, check=True, stdout=subprocess.DEVNULL)

    def replay(self, run: int) -> None:
        """Replay the shared history once into a fresh database and keep the figures."""
        out = self.work / f"run{run}-{self.name}.out"
        started = time.perf_counter()
        with out.open("w") as stdout:
            child = subprocess.Popen(
                [sys.executable, "-m", "bot", "replay", "--config", str(CONFIG), "--data", str(market_data()),
                 "--db", f"run{run}-{self.name}.db", "--speed", "max", "--log-level", "WARNING"],
                cwd=self.work, stdout=stdout, stderr=subprocess.DEVNULL, env=self.env,
            )
            peak = PeakRss(child.pid)
            # wait4 gives this child's own CPU (RUSAGE_CHILDREN would mix in other benchmarks').
            _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        if status != 0:
            raise RuntimeError(f"replay run {run} of {self.checkout} failed with status {status}")
        summary = out.read_text().split("replay done: ", 1)[1].splitlines()[0]
        self.bars = int(summary.split(" bars", 1)[0].replace(",", ""))
        self.summaries.add(summary.split("), ", 1)[1])
        self.peaks.append(peak.mib())
        self.seconds.append(elapsed)
        self.cpu.append(usage.ru_utime + usage.ru_stime)

    def figures(self, label: str) -> list[tuple[str, str]]:
        """Return the medians as rows of the bench table."""
        wall, cpu = median(self.seconds), median(self.cpu)
        return [
            (f"replay{label}: bars replayed", f"{self.bars:,}, {' / '.join(sorted(self.summaries))}"),
            (f"replay{label}: wall / CPU time, whole process (median of {len(self.seconds)}; machine may be shared)",
             f"{wall:.2f} s / {cpu:.2f} s"),
            (f"replay{label}: throughput by wall / by CPU time (target >= 20,000)",
             f"{self.bars / wall:,.0f} / {self.bars / cpu:,.0f} bars/s"),
            (f"replay{label}: peak RSS (median)", f"{median(self.peaks):.0f} MiB"),
        ]


def main() -> list[tuple[str, str]]:
    """Replay the shared history with the shipped config.yaml RUNS times (paired with a baseline when set)."""
    baseline = os.environ.get("BENCH_REPLAY_BASELINE")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        current = Runs(REPO, work, "current")
        before = Runs(Path(baseline).resolve(), work, "baseline") if baseline else None
        for run in range(RUNS):
            if before is not None:
                before.replay(run)
            current.replay(run)
    rows = current.figures("")
    if before is not None:
        rows += before.figures(f" (baseline {baseline})")
        rows.append(("replay: baseline / this checkout, medians of paired runs (wall, CPU)",
                     f"{median(before.seconds) / median(current.seconds):.2f}x, "
                     f"{median(before.cpu) / median(current.cpu):.2f}x"))
    return rows


if __name__ == "__main__":
    for name, value in main():
        print(f"{name:<50} {value}")
