"""Benchmark: what `riskon run` holds, library by library, and how its memory moves over hours of polls.

- Imports, library by library: a fresh process imports what `riskon run` of the default config loads, in the order
  it loads it (riskon's run path, then each feed's libraries, lightest first, as bot.feeds.libraries does), and
  reads its resident memory (VmRSS) after each step. ccxt is shown in its two halves: `import ccxt.async_support`
  runs ccxt's package __init__ first, which loads every exchange's synchronous class, then its own, which loads
  every exchange's asynchronous one (upstream: ccxt/ccxt#29573).
- Hours of polls in minutes: the real `riskon run` (its own process) with config.yaml as shipped, every interval
  divided by --scale (polls, the outbox drain, the fragility snapshot's pace and budget) against the fake Yahoo,
  kraken and iShares servers of bench_startup, for --minutes. With --scale 60, a minute is an hour of the default
  config's polls. RSS is sampled every few seconds; the slope over the second half is the figure, in MB per
  simulated hour, beside the polls the fakes answered. Wall-clock things (a daily bar's close, cooldowns) do not
  speed up: this measures what grows with polls and drains, which is what a long run repeats. No interval goes
  below what the config accepts (a poll a second, 20 drains a second): at 60x, the fragility feed's idle polls
  and the outbox drains run at 30x and 40x.

Run alone: python bench/bench_memory.py [--minutes M] [--scale S] [--baseline CHECKOUT]; or python bench/run.py memory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_startup import Fakes, checkout_env, cpu_seconds, memory_over_time, rss_mb, slope_mb_per_hour, write_config

REPO = Path(__file__).resolve().parent.parent

IMPORT_STEPS = """
import importlib, json, sys

def rss():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")) / 1024

steps = [("python itself", rss())]
import bot.cli, bot.runtime, bot.scheduler, bot.serving
from bot.config import load_config
from bot.feeds import build_feed
from bot.feeds.libraries import LIGHTEST_FIRST
config = load_config(sys.argv[1])
steps.append(("riskon's run path (pydantic, sqlite-utils, asyncio, riskon)", rss()))
wanted = set()
for name, feed in config.feeds.items():
    symbols = [s for s in config.symbols if s.feed == name or s.history_feed == name]
    wanted |= set(getattr(build_feed(name, feed.kind, feed.settings, symbols, None), "libraries", ()))
rank = {name: place for place, name in enumerate(LIGHTEST_FIRST)}
for library in sorted(wanted, key=lambda name: (rank.get(name, len(rank)), name)):
    if library.startswith("ccxt."):
        importlib.import_module("ccxt")
        steps.append(("ccxt's package (every exchange, synchronous)", rss()))
    importlib.import_module(library)
    steps.append((library, rss()))
print(json.dumps(steps))
"""


def import_steps(config: Path, env: dict[str, str]) -> list[tuple[str, float]]:
    """Return (what was imported, RSS in MB once it was) for each step of `riskon run`'s imports of `config`."""
    done = subprocess.run([sys.executable, "-c", IMPORT_STEPS, str(config)], cwd=config.parent, env=env,
                          check=True, capture_output=True, text=True)
    return [(name, float(mb)) for name, mb in json.loads(done.stdout.strip().splitlines()[-1])]


def scale_config(path: Path, scale: float) -> None:
    """Divide every interval of the config at `path` by `scale` (and multiply the fragility snapshot's pace)."""
    from bot.config.models import MIN_DELIVER_SECONDS, MIN_POLL_SECONDS, MIN_REPLAY_STEP_SECONDS

    config = yaml.safe_load(path.read_text())
    schedule = config.setdefault("schedule", {})
    # No shorter than config.yaml allows (it refuses a drain under 0.05 s and a network poll under 1 s).
    schedule["deliver_every_seconds"] = max(MIN_DELIVER_SECONDS, schedule.get("deliver_every_seconds", 2.0) / scale)
    for feed in config["feeds"].values():
        floor = MIN_REPLAY_STEP_SECONDS if feed.get("kind") == "replay" else MIN_POLL_SECONDS
        feed["every_seconds"] = max(floor, feed.get("every_seconds", 60.0) / scale)
    fragility = config["feeds"]["fragility"]
    fragility["requests_per_second"] = min(100.0, fragility.get("requests_per_second", 0.5) * scale)
    fragility["snapshot_every_days"] = max(0.01, fragility.get("snapshot_every_days", 7.0) / scale)
    fragility["time_budget_minutes"] = fragility.get("time_budget_minutes", 180.0) / scale
    fragility["work_per_poll_seconds"] = fragility.get("work_per_poll_seconds", 120.0) / scale
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def served(fakes: Fakes) -> dict[str, int]:
    """Return how many requests each fake has answered so far (Yahoo's price charts apart from its other calls)."""
    charts = fakes.charts_seen()
    return {"yahoo charts": charts, "yahoo other": len(fakes.yahoo.requests) - charts,
            "kraken": len(fakes.kraken.requests), "ishares": fakes.ishares.requests}


def rss_anon_cpu(pid: int) -> tuple[float, float, float]:
    """Return a process's RSS and anonymous RSS in MB, and the CPU seconds it has used."""
    with open(f"/proc/{pid}/status") as handle:
        anon = next(int(line.split()[1]) for line in handle if line.startswith("RssAnon")) / 1024
    return rss_mb(pid)[0], anon, cpu_seconds(pid)


def soak(fakes: Fakes, config: Path, env: dict[str, str], seconds: float,
         every: float = 5.0) -> tuple[list[tuple[float, ...]], dict[str, int], float]:
    """Run the bot for `seconds`; return its (elapsed s, RSS MB, RssAnon MB, CPU s) samples, fake requests and CPU s."""
    before = served(fakes)
    samples = memory_over_time(config, config.parent / "run.log", env, seconds, every, sample=rss_anon_cpu)
    after = served(fakes)
    return samples, {name: after[name] - before[name] for name in after}, samples[-1][3]


def at(samples: list[tuple[float, ...]], seconds: float) -> float:
    """Return the RSS of the first sample taken at or after `seconds` (the last one if none was)."""
    return next((s[1] for s in samples if s[0] >= seconds), samples[-1][1])


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    """Print the import breakdown and the accelerated run's memory figures (paired with a baseline if given)."""
    from _util import market_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("BENCH_MEMORY_MINUTES", 4)),
                        help="length of each accelerated run in real minutes (default 4, or $BENCH_MEMORY_MINUTES)")
    parser.add_argument("--scale", type=float, default=60.0,
                        help="time scale: every interval divided by this (default 60: a minute is an hour)")
    parser.add_argument("--baseline", default=os.environ.get("BENCH_MEMORY_BASELINE"),
                        help="another checkout of riskon to pair the figures with (or $BENCH_MEMORY_BASELINE)")
    args = parser.parse_args(argv or [])
    checkouts = {"this": REPO, **({"baseline": Path(args.baseline).resolve()} if args.baseline else {})}
    fakes = Fakes(market_data())
    fakes.start()
    folder = Path(tempfile.mkdtemp(prefix="riskon-bench-memory-"))
    rows: list[tuple[str, str]] = []
    try:
        for name, checkout in checkouts.items():
            work = folder / name
            work.mkdir()
            env = checkout_env(checkout, work)
            config = write_config(fakes, work, 0)
            steps = import_steps(config, env)  # the first one also compiles every library into the pycache prefix
            steps = import_steps(config, env)
            previous = 0.0
            for what, mb in steps:
                rows.append((f"memory: imports, {what} [{name}]", f"{mb:6.1f} MB ({mb - previous:+.1f})"))
                previous = mb
            scale_config(config, args.scale)
            samples, requests, cpu = soak(fakes, config, env, args.minutes * 60)
            hours = samples[-1][0] * args.scale / 3600
            per_hour = slope_mb_per_hour(samples) / args.scale  # a real hour holds `scale` simulated ones
            anon_per_hour = slope_mb_per_hour(samples, 2) / args.scale
            for elapsed, rss, anon, _ in samples[:: max(1, len(samples) // 8)] + samples[-1:]:
                print(f"  [{name}] x{args.scale:g}, {elapsed:4.0f} s real = {elapsed * args.scale / 3600:5.1f} h: "
                      f"RSS {rss:6.1f} MB (anonymous {anon:6.1f})")
            rows += [
                (f"memory: run x{args.scale:g}, {hours:.1f} simulated hours in {samples[-1][0]:.0f} s [{name}]",
                 f"RSS {at(samples, 20):.1f} MB at 20 s, {samples[-1][1]:.1f} MB at the end "
                 f"(peak {max(s[1] for s in samples):.1f}); floor of its imports {steps[-1][1]:.1f} MB"),
                (f"memory: growth over the second half, per simulated hour [{name}]",
                 f"{per_hour:+.2f} MB/h RSS ({anon_per_hour:+.2f} anonymous); target <= 150 MB after an hour"),
                (f"memory: work done in the run [{name}]",
                 ", ".join(f"{what} {count:,}" for what, count in requests.items()) + f"; CPU {cpu:.0f} s"),
            ]
    except BaseException:
        print(f"logs kept in {folder}", file=sys.stderr)
        raise
    else:
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        fakes.stop()
    for row_name, value in rows:
        print(f"{row_name:<80} {value}")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
