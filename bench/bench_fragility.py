"""Benchmark a fragility snapshot against fake iShares and Yahoo servers that add 100 ms to every request.

At the default pace (0.5 requests per second) a Russell-2000-sized snapshot takes over an hour, so by default
this runs 60 members and projects the full figure from them; `--full` (or RISKON_BENCH_FULL=1) runs all 2,000.
The member mix is Yahoo's, roughly: most have a trailing figure, some only quarters, a few nothing or a 404.
Figures: wall time, HTTP requests (all of them: cookie, crumb, yfinance's own retries), peak RSS of the
process taking the snapshot (wait4: its own, not the benchmark's).

Run: /work/venv/bin/python bench/bench_fragility.py [--full]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LATENCY = 0.100
FULL_MEMBERS = 2000
SHORT_MEMBERS = 60

SNAPSHOT = """
import asyncio, json, sys, time
from datetime import datetime, timezone
from bot.feeds.fragility import FragilityFeed, FragilitySettings
from storage import Store

async def main():
    store = Store.open(sys.argv[1])
    # Default pace, budget and coverage; only the hosts point at the fakes, and one poll does the whole snapshot.
    settings = FragilitySettings(yahoo_base_url=sys.argv[2], ishares_base_url=sys.argv[3], funds={"IWM": {}},
                                 work_per_poll_seconds=3600)
    feed = FragilityFeed("fragility", settings, store=store)
    started = time.perf_counter()
    for _ in range(20):
        await feed.fetch([], {}, datetime.now(timezone.utc))
        if feed.table.running("IWM") is None:
            break
    seconds = time.perf_counter() - started
    done = feed.table.last_finished("IWM")
    await feed.close()
    print(json.dumps({"seconds": seconds, "status": done.status, "members": done.members, "covered": done.covered,
                      "pct_count": done.unprofitable_pct_count, "pct_weight": done.unprofitable_pct_weight,
                      "coverage": done.coverage_pct_weight, "pace": settings.requests_per_second}))

asyncio.run(main())
"""


def _publish(yahoo, ishares, members: int) -> None:
    """Publish `members` companies: 86 % with a trailing figure, 8 % quarters only, 5 % nothing, 1 % a 404."""
    from tests.fakes.ishares import Holding, cash_and_futures

    rng = random.Random(17)
    weights = [1.0 / (rank + 10) for rank in range(members)]
    scale = 99.0 / sum(weights)
    holdings = []
    quarters = [date(2025, 12, 31), date(2026, 3, 31), date(2026, 6, 30), date(2026, 9, 30)]
    for rank, weight in enumerate(weights):
        ticker = f"M{rank:04d}"
        holdings.append(Holding(ticker, weight * scale))
        kind = rng.random()
        income = rng.gauss(5e6, 2e7)
        if kind < 0.86:
            yahoo.publish_earnings(ticker, trailing=[(date(2026, 9, 30), income)])
        elif kind < 0.94:
            yahoo.publish_earnings(ticker, quarterly=[(q, income / 4) for q in quarters])
        elif kind < 0.99:
            pass  # Yahoo knows the symbol but has no income figures: an empty result
        else:
            yahoo.delist(ticker)
    ishares.publish_holdings("IWM", date(2026, 11, 26), holdings + cash_and_futures())


def _serve(members: int) -> tuple[object, object, asyncio.AbstractEventLoop, threading.Thread]:
    """Start the fakes in a thread of their own (the snapshot runs in a child process)."""
    from tests.fakes.ishares import FakeIShares
    from tests.fakes.yahoo import FakeYahoo

    loop = asyncio.new_event_loop()
    yahoo, ishares = FakeYahoo(latency=LATENCY), FakeIShares()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(yahoo.start(), loop).result(10)
    asyncio.run_coroutine_threadsafe(ishares.start(), loop).result(10)
    _publish(yahoo, ishares, members)
    return yahoo, ishares, loop, thread


def run_snapshot(members: int) -> dict:
    """Take one snapshot of `members` members in a child process; return its figures."""
    yahoo, ishares, loop, thread = _serve(members)
    try:
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            child = subprocess.Popen([sys.executable, "-c", SNAPSHOT, str(Path(folder) / "bench.db"), yahoo.url,
                                      ishares.url], stdout=subprocess.PIPE, env=env, cwd=str(ROOT))
            output = child.stdout.read()  # type: ignore[union-attr]
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode != 0:
                raise RuntimeError(f"snapshot process exited {child.returncode}")
        figures = json.loads(output.decode().strip().splitlines()[-1])
        figures["requests"] = len(yahoo.requests) + ishares.requests
        figures["income_requests"] = len(yahoo.income_requests())
        figures["peak_rss_mb"] = usage.ru_maxrss / 1024
        return figures
    finally:
        asyncio.run_coroutine_threadsafe(yahoo.stop(), loop).result(10)
        asyncio.run_coroutine_threadsafe(ishares.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def main(full: bool | None = None) -> list[tuple[str, str]]:
    """Return the figures as (name, value) rows."""
    if full is None:
        full = os.environ.get("RISKON_BENCH_FULL") == "1" or "--full" in sys.argv[1:]
    members = FULL_MEMBERS if full else SHORT_MEMBERS
    started = time.perf_counter()
    figures = run_snapshot(members)
    label = f"fragility snapshot, {members} members, 100 ms latency, {figures['pace']:g} req/s"
    rows = [
        (f"{label}: wall time", f"{figures['seconds']:.0f} s ({figures['seconds'] / 60:.1f} min)"),
        (f"{label}: HTTP requests", f"{figures['requests']:,} ({figures['income_requests']:,} income statements)"),
        (f"{label}: peak RSS", f"{figures['peak_rss_mb']:.0f} MB"),
        (f"{label}: result", f"{figures['status']}, {figures['covered']:,} of {figures['members']:,} covered "
                             f"({figures['coverage']:.1f}% of weight), {figures['pct_count']:.1f}% unprofitable"),
    ]
    if not full:
        per_member = figures["seconds"] / members
        rows.append((f"fragility snapshot, {FULL_MEMBERS} members: projected wall time (run --full to measure)",
                     f"{per_member * FULL_MEMBERS / 60:.0f} min"))
    print(f"bench_fragility: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows


if __name__ == "__main__":
    for name, value in main():
        print(f"{name}: {value}")
