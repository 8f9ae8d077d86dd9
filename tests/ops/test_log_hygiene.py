"""Logs an operator can read: no scheduler noise, no pandas deprecations, secrets masked and nothing else,
interaction tokens redacted at DEBUG, a recovery said once, a silent websocket said when prices fall back to REST."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta, timezone

import pytest

from bot.config import parse_config
from bot.feeds.exchange import ExchangeFeed, ExchangeSettings
from bot.runtime import Runtime
from storage import Store
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.exchanges import FakeExchange, Market
from tests.fakes.yahoo import FakeYahoo, Instrument, read_csv_rows
from tests.ops.bot_process import BotProcess

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
THURSDAY = date(2026, 9, 24)


def crypto_on_yahoo(market_data, *pairs: str) -> FakeYahoo:
    yahoo = FakeYahoo()
    for pair in pairs:
        yahoo.add(Instrument(pair, read_csv_rows(market_data / f"{pair}.csv", until=THURSDAY), timezone="UTC",
                             instrument_type="CRYPTOCURRENCY"))
    return yahoo


async def test_a_live_run_at_debug_logs_what_an_operator_needs_and_nothing_it_must_not(market_data, tmp_path):
    yahoo = crypto_on_yahoo(market_data, "BTC-USD")
    await yahoo.start()
    discord = await FakeDiscord().start()
    guild = discord.add_guild()
    database = tmp_path / "live.db"
    (tmp_path / "config.yaml").write_text(f"""
storage: {{path: "${{RISKON_DB}}"}}
schedule: {{deliver_every_seconds: 0.2}}
feeds:
  yahoo: {{kind: yahoo, base_url: "{yahoo.url}", cache_dir: "{tmp_path / 'yf'}", every_seconds: 1, timeout_seconds: 3}}
symbols:
  - {{id: BTC, feed: yahoo, source: BTC-USD, asset_class: crypto}}
rules:
  - {{id: btc_ath, kind: new_ath, symbols: [BTC]}}
channels:
  discord: {{token: "${{DISCORD_BOT_TOKEN}}", api_base: "{discord.api_base}", gateway: "{discord.gateway}",
            guild_ready_timeout: 0.05}}
""")
    bot = BotProcess(["run", "--config", "config.yaml", "--log-level", "DEBUG"], tmp_path,
                     env={"RISKON_DB": str(database), "DISCORD_BOT_TOKEN": discord.token})
    await bot.start()
    try:
        await bot.wait_for_line(r"discord: connected as", 60)
        for _ in range(200):  # the first poll stores BTC's history
            if database.exists() and Store.open(database).last_bar_time("BTC") is not None:
                break
            await asyncio.sleep(0.1)
        answer = await discord.interact(guild, discord.channel(guild, "alerts"), "status", timeout=20)
        token = next(t for t, i in discord._interactions.items() if i["id"] == discord.last_interaction_id)
        await asyncio.sleep(1.5)  # several delivery ticks and polls
        code, _ = await bot.stop()
    finally:
        await bot.kill()
        await discord.stop()
        await yahoo.stop()

    logged = bot.lines
    assert code == 0 and "BTC" in discord.text_of(answer)
    assert any("INTERACTION_CREATE" in line for line in logged), "discord.py's DEBUG events are in the log"
    assert not [line for line in logged if token in line], "an interaction token answers for 15 minutes"
    assert not [line for line in logged if "Pandas4Warning" in line or "FutureWarning" in line]
    # Only secrets are masked: the database path from the environment is shown as it is.
    assert any(f"database {database}" in line for line in logged), [line for line in logged if "database" in line]
    assert not [line for line in logged if discord.token in line]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_a_symbol_that_recovers_says_so_once(store, market_data, caplog):
    yahoo = crypto_on_yahoo(market_data, "BTC-USD", "ETH-USD")
    await yahoo.start()
    config = parse_config(f"""
feeds:
  yahoo: {{kind: yahoo, base_url: "{yahoo.url}", every_seconds: 60, timeout_seconds: 3, backoff_base_seconds: 1}}
symbols:
  - {{id: BTC, feed: yahoo, source: BTC-USD, asset_class: crypto}}
  - {{id: ETH, feed: yahoo, source: ETH-USD, asset_class: crypto}}
rules:
  - {{id: ath, kind: new_ath, symbols: [BTC, ETH]}}
""", env={})
    clock = Clock(datetime(2026, 9, 25, 13, 0, tzinfo=timezone.utc))
    runtime = Runtime(config, store, clock=clock)
    try:
        # A first healthy poll makes yfinance learn ETH's time zone whatever ran before in this process,
        # so each fault below answers a chart request, not a time-zone probe.
        await runtime.poll("yahoo")
        yahoo.fail("ETH-USD", "malformed", times=2)
        with caplog.at_level(logging.INFO, logger="bot.runtime"):
            for minutes in (5, 10, 15, 20):
                clock.now = datetime(2026, 9, 25, 13, minutes, tzinfo=timezone.utc)
                await runtime.poll("yahoo")
    finally:
        await runtime.close()
        await yahoo.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "bot.runtime"]
    assert len([m for m in messages if "1 of 2 symbol(s) failing: ETH" in m]) == 1, messages
    assert [m for m in messages if "recovered" in m] == ["feed yahoo: ETH recovered"]


async def test_a_connected_but_silent_websocket_is_logged_once_when_prices_fall_back_to_rest(market_data, caplog):
    binance = FakeExchange("binance")
    rows = read_csv_rows(market_data / "BTC-USD.csv", until=THURSDAY)
    binance.add(Market("BTC/USDT", rows[:-1], forming=rows[-1]))
    await binance.start()
    noon = datetime(2026, 9, 24, 12, tzinfo=timezone.utc)
    from tests.bot.feeds.test_exchange import crypto

    feed = ExchangeFeed("x", ExchangeSettings(exchange="binance", base_url=binance.url, rate_limit_ms=1,
                                              timeout_seconds=5, stream=True, stream_silent_seconds=0.3),
                        crypto("BTC/USDT"), None)
    try:
        await feed.fetch(["BTC"], {"BTC": None}, noon)
        for _ in range(100):
            if feed.streams.heard("BTC"):
                break
            await asyncio.sleep(0.05)
        binance.ws_silent = True
        await asyncio.sleep(0.6)
        with caplog.at_level(logging.INFO, logger="riskon.feeds.exchange"):
            before = binance.count("/api/v3/ticker/24hr")
            for _ in range(3):
                await feed.fetch(["BTC"], {"BTC": noon - timedelta(days=1)}, noon)
            assert binance.count("/api/v3/ticker/24hr") == before + 3  # REST answered each poll
            binance.ws_silent = False
            await asyncio.sleep(0.3)
            await feed.fetch(["BTC"], {"BTC": noon - timedelta(days=1)}, noon)
    finally:
        await feed.close()
        await binance.stop()
    messages = [r.getMessage() for r in caplog.records]
    silent = [m for m in messages if "websocket connected but silent" in m]
    assert len(silent) == 1 and silent[0].startswith("x BTC: websocket connected but silent for ")
    assert "x BTC: websocket ticking again; prices from it" in messages

