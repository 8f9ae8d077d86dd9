"""Benchmark: what each command costs before it does its work (imports, config), as whole processes.

`riskon replay` and `riskon backtest` are timed up to their first read of the data: pointed at an empty folder, each
loads its code and validates the shipped config.yaml, then stops with its "no history" message (exit 1). `--help` and
check-config are timed whole. Each figure is the median of several runs of the process's own CPU seconds (wait4),
with a bare `python -c pass` beside it. Bytecode is kept aside (an install has it compiled), made by one untimed run.

Run alone: python bench/bench_command_start.py [--runs N]; or python bench/run.py command_start.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _util import median

ROOT = Path(__file__).resolve().parent.parent
BYTECODE_CACHE = Path(tempfile.gettempdir()) / "riskon-bench-pycache"


def cost(argv: list[str]) -> tuple[float, float]:
    """Run a command to its end, whatever its exit code; return its wall seconds and its own CPU seconds."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(ROOT), PYTHONPYCACHEPREFIX=str(BYTECODE_CACHE))
    started = time.perf_counter()
    child = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, _, usage = os.wait4(child.pid, 0)
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def main(runs: int = 7) -> list[tuple[str, str]]:
    riskon = [sys.executable, "-m", "bot"]
    with tempfile.TemporaryDirectory() as empty:
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "riskon --help": [*riskon, "--help"],
            "riskon replay --help": [*riskon, "replay", "--help"],
            "riskon backtest --help": [*riskon, "backtest", "--help"],
            "riskon check-config config.yaml": [*riskon, "check-config", "config.yaml"],
            "riskon replay, up to reading data": [*riskon, "replay", "--data", empty, "--db",
                                                  str(Path(empty) / "replay.db")],
            "riskon backtest, up to reading data": [*riskon, "backtest", "--data", empty],
        }
        for argv in commands.values():
            cost(argv)  # untimed: compiles the bytecode, as an install would have
        timed: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(runs):  # in turn, so a change in the machine's load touches every command alike
            for name, argv in commands.items():
                timed[name].append(cost(argv))
    bare = median([cpu for _, cpu in timed["python -c pass"]])
    rows = []
    for name, costs in timed.items():
        cpu, wall = median([c for _, c in costs]), median([w for w, _ in costs])
        rows.append((f"start: {name}", f"{cpu:.3f} s CPU, {wall:.3f} s wall (median of {runs}; "
                                       f"{cpu / bare:.1f}x python itself)"))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    for figure, value in main(parser.parse_args().runs):
        print(f"{figure:<48} {value}")
