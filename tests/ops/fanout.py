"""A real `riskon run` process fanning one BTC alert out to many Telegram chats: the harness the ops tests share."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.fakes.telegram_api import TOKEN
from tests.fakes.yahoo import Instrument, read_csv_rows

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
storage: {{path: "{db}", busy_timeout_seconds: {busy_timeout}}}
schedule: {{deliver_every_seconds: 0.5, retry_base_seconds: 1}}
feeds:
  yahoo: {{kind: yahoo, base_url: "{yahoo}", every_seconds: 2, timeout_seconds: 5, cache_dir: "{cache}"}}
symbols:
  - {{id: BTC, feed: yahoo, source: BTC-USD, asset_class: crypto}}
rules:
  - {{id: btc_ath, kind: new_ath, symbols: [BTC], by: high}}
channels:
  telegram: {{token: "${{TELEGRAM_BOT_TOKEN}}", base_url: "{telegram}", base_file_url: "{telegram_files}",
              poll_timeout_seconds: 1, request_timeout_seconds: 5, messages_per_second: {pace},
              register_commands: false}}
"""


def write_config(path: Path, *, db: Path, yahoo, telegram, cache: Path, pace: float = 150,
                 busy_timeout: float = 5.0) -> Path:
    """Write the fan-out config (one BTC rule, Telegram at `pace` messages a second) and return its path."""
    path.write_text(CONFIG.format(db=db, yahoo=yahoo.url, cache=cache, telegram=telegram.base_url,
                                  telegram_files=telegram.base_file_url, pace=pace, busy_timeout=busy_timeout))
    return path


def btc_history(market_data: Path) -> Instrument:
    """Serve 400 real BTC days relabelled to end yesterday, and today's forming bar 2% above their high."""
    rows = read_csv_rows(market_data / "BTC-USD.csv")
    peak = max(range(len(rows)), key=lambda i: rows[i].high)
    window = rows[max(0, peak - 399): peak + 1]  # ends on the record day, so today's move stays small
    today = datetime.now(timezone.utc).date()
    relabelled = [replace(row, day=today - timedelta(days=len(window) - i)) for i, row in enumerate(window)]
    last = relabelled[-1]
    record = max(r.high for r in relabelled)
    forming = replace(last, day=today, open=last.close, high=record * 1.02, low=last.close * 0.99,
                      close=record * 1.01)
    return Instrument("BTC-USD", relabelled, timezone="UTC", instrument_type="CRYPTOCURRENCY", forming=forming)


async def away_from_midnight() -> None:
    """Sleep past UTC midnight when it is near: today's forming bar would turn into yesterday's (silent) final bar."""
    now = datetime.now(timezone.utc)
    to_midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc) - now
    if to_midnight < timedelta(minutes=2):
        await asyncio.sleep(to_midnight.total_seconds() + 1)


def delivery_status(db: Path) -> dict[int, str]:
    """Return each chat's delivery status as the (dead or live) process left it in the database."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        return {int(chat): status for chat, status in conn.execute("select chat_id, status from deliveries")}
    finally:
        conn.close()


async def spawn(config: Path, log: Path) -> asyncio.subprocess.Process:
    """Start `riskon run` (python -m bot run) as its own process, its output appended to `log`."""
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(config), "--log-level", "INFO",
            cwd=REPO, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink,
        )


async def wait_for(condition, timeout: float, process: asyncio.subprocess.Process, log: Path) -> bool:
    """Wait (bounded) until condition() holds; fail at once if the bot died by itself."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.returncode is not None:
            pytest.fail(f"riskon exited by itself ({process.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True
