"""Soak: seven market days in accelerated time with faults sprinkled in; memory flat, nothing leaked, each alert once.

A shorter run of bench/bench_soak.py (hourly polls, more faults per poll, 30 subscribers); the benchmark polls
every 5 minutes.
"""

from __future__ import annotations

import pytest

from bench.bench_soak import figures, soak

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:The inplace keyword")]

RSS_GROWTH_MB = 12.0  # after the first alert day; a leak of one chart or response per poll would pass this in days
# Sockets, fds and tasks may move by a few with the HTTP connection pools (how many connections a fan-out left
# open); a leak of one per poll (about 14 a day here) or per send (30 a fan-out) would be far beyond this.
POOL_SLACK = 8


async def test_seven_market_days_with_faults_leave_memory_flat_and_nothing_leaked(tmp_path, market_data):
    report = await soak(market_data, step_minutes=60, chats=30, seed=11, folder=str(tmp_path),
                        yahoo_fault_rate=0.15, telegram_fault_rate=0.3)
    print("\n" + "\n".join(f"{name}: {value}" for name, value in figures(report)))
    assert report.days == 7
    assert sum(report.faults.values()) >= 10, "the soak must actually meet faults"
    assert report.recorded == report.expected and len(report.expected) >= 4
    assert report.lost == 0 and report.duplicates == 0
    assert report.outbox == {"pending": 0, "sent": 30 * len(report.expected), "retrying": 0, "failed": 0}
    start, end, before, after = report.start, report.end, report.before, report.after
    assert end.rss_mb - start.rss_mb < RSS_GROWTH_MB, [v.rss_mb for v in report.vitals]
    assert end.tasks <= start.tasks + POOL_SLACK // 2, report.vitals
    assert end.fds <= start.fds + POOL_SLACK and end.sockets <= start.sockets + POOL_SLACK, report.vitals
    assert end.threads <= start.threads + 2, report.vitals
    # Once stopped, riskon holds nothing: no task, no thread. What stays open is one-time and process-wide:
    # matplotlib's two font files and yfinance's shared HTTP session (two sockets, two eventfds).
    assert (after.tasks, after.threads) == (before.tasks, before.threads), (before, after)
    assert after.sockets <= before.sockets + 2 and after.fds <= before.fds + 6, (before, after)
