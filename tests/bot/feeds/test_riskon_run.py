"""`riskon run` as a user starts it, pointed at a fake kraken: backfill, then a live high becomes an alert."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from tests.fakes.exchanges import FakeExchange, Market
from tests.fakes.yahoo import read_csv_rows

REPO = Path(__file__).resolve().parents[3]


def before_a_real_high(rows, days: int):
    """Return `days` real rows before a real new all-time high, moved to end yesterday, and that day as today."""
    best = 0.0
    for index, row in enumerate(rows):
        if index >= days and row.high > best and row.high < rows[index - 1].close * 1.1:
            chosen = index
        best = max(best, row.high)
    history, high_day = rows[chosen - days:chosen], rows[chosen]
    today = datetime.now(timezone.utc).date()
    shift = today - high_day.day
    return [replace(r, day=r.day + shift) for r in history], replace(high_day, day=today)


async def test_riskon_run_backfills_then_alerts_on_a_live_high(market_data, tmp_path):
    fake = FakeExchange("kraken")
    # BTC: 400 real days before one of its real all-time highs; ETH: 1,000 days, of which kraken serves 720.
    for pair, stem, days in (("BTC/USD", "BTC-USD", 400), ("ETH/USD", "ETH-USD", 1000)):
        history, high_day = before_a_real_high(read_csv_rows(market_data / f"{stem}.csv"), days)
        fake.add(Market(pair, history, forming=high_day))
    await fake.start()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"storage: {{path: {tmp_path / 'riskon.db'}}}\n"
        f"feeds:\n  kraken: {{kind: exchange, exchange: kraken, base_url: '{fake.url}', rate_limit_ms: 5,"
        " every_seconds: 1}\n"
        "symbols:\n"
        "  - {id: BTC, feed: kraken, source: BTC/USD, asset_class: crypto}\n"
        "  - {id: ETH, feed: kraken, source: ETH/USD, asset_class: crypto}\n"
        "rules:\n  - {id: ath, kind: new_ath, symbols: [BTC, ETH], by: high}\n"
        "channels:\n  console: {enabled: true}\n"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config), "--log-level", "WARNING", cwd=str(REPO),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    output = ""
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not ("BTC" in output and "ETH" in output):
            try:
                line = await asyncio.wait_for(child.stdout.readline(), 1.0)
            except TimeoutError:
                continue
            if not line:
                break
            output += line.decode()
    finally:
        child.terminate()
        _, errors = await child.communicate()
        await fake.stop()
    assert "BTC" in output and "ETH" in output, errors.decode()[-2000:]
    # BTC's 400 days are all kraken has: its full history. ETH's 1,000 days were cut to kraken's 720.
    btc_alert = next(block for block in output.split("\n\n") if "BTC" in block)
    eth_alert = next(block for block in output.split("\n\n") if "ETH" in block)
    assert "highest since" not in btc_alert
    assert "highest since" in eth_alert
    assert child.returncode is not None
