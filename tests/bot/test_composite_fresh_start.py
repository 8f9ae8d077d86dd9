"""A composite on a fresh database: computed right after its members' first poll; /status says what it waits for."""

from __future__ import annotations

import asyncio
import io
from datetime import date, datetime, timezone

import pytest

from bot.commands import CommandContext, dispatch
from bot.config import parse_config
from bot.runtime import Runtime
from bot.scheduler import Scheduler
from tests.fakes.yahoo import FakeYahoo, Instrument, read_csv_rows

THURSDAY = date(2026, 9, 24)
CONFIG = """
feeds:
  yahoo: {{kind: yahoo, base_url: "{yahoo}", every_seconds: 300, timeout_seconds: 3}}
  alts:
    kind: composite
    every_seconds: 300
    indexes: {{ALTS: {{members: [SOL, XRP], weighting: equal}}}}
symbols:
  - {{id: SOL, feed: yahoo, source: SOL-USD, asset_class: crypto}}
  - {{id: XRP, feed: yahoo, source: XRP-USD, asset_class: crypto}}
  - {{id: ALTS, feed: alts, asset_class: composite}}
rules:
  - {{id: alts_ath, kind: new_ath, symbols: [ALTS]}}
channels:
  console: {{enabled: true}}
"""
PRIVATE = CommandContext("telegram", "111", user_id="111", is_private=True)


@pytest.fixture
# Not the shared `runtime` fixture (tests/conftest.py): its feed is a fake Yahoo serving real history.
async def runtime(store, market_data):
    yahoo = FakeYahoo()
    for pair in ("SOL-USD", "XRP-USD"):
        yahoo.add(Instrument(pair, read_csv_rows(market_data / f"{pair}.csv", until=THURSDAY), timezone="UTC",
                             instrument_type="CRYPTOCURRENCY"))
    await yahoo.start()
    made = Runtime(parse_config(CONFIG.format(yahoo=yahoo.url), env={}), store, console_stream=io.StringIO(),
                   clock=lambda: datetime(2026, 9, 25, 13, 0, tzinfo=timezone.utc))
    yield made
    await made.close()
    await yahoo.stop()


async def status_of(runtime: Runtime, symbol: str) -> str:
    reply = await dispatch(runtime, PRIVATE, "status", [])
    return next(line for line in reply.text.splitlines() if line.startswith(f"{symbol}:") or f" {symbol}:" in line)


async def test_the_composite_is_computed_right_after_its_members_first_poll(runtime, caplog):
    scheduler = Scheduler(runtime)
    running = asyncio.create_task(scheduler.run())
    try:
        # Both feeds are due at once; the composite polls every 300 s, so only a poll chained to its members'
        # arrival computes it within these seconds.
        for _ in range(200):
            if runtime.store.last_bar_time("ALTS") is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        scheduler.stop()
        await asyncio.wait_for(running, 15)
    # XRP's history ends on 2025-08-13: the last day both members have.
    assert runtime.store.last_bar_time("ALTS") == datetime(2025, 8, 13, tzinfo=timezone.utc)
    assert "no data yet" not in await status_of(runtime, "ALTS")
    # Not polled beside its members at start, so no warning that they have no bars yet.
    assert not [r for r in caplog.records if "waiting for its members" in r.getMessage()]


async def test_status_says_the_composite_waits_for_its_members_first_bars(runtime):
    assert await status_of(runtime, "ALTS") == "ALTS: no data yet"
    await runtime.poll("alts")  # before the members' feed has polled
    assert await status_of(runtime, "ALTS") == "ALTS: no data yet, waiting for its members' first bars (SOL, XRP)"
    assert await status_of(runtime, "SOL") == "SOL: no data yet"
