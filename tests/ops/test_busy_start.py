"""A busy start: `riskon run` loads decades of real history while a trader asks /status; the answers keep coming.

The fake Yahoo serves ^RUT (since 1987) and IWM (since 2000): about 16,000 daily bars that the engine steps three
rules over at start. A trader asks /status the moment the bot is logged in, then every half second until the
history is stored. The first question meets the bot's own start-up: the health endpoint's imports (aiohttp,
prometheus) and the exchange calendar ran on the event loop and held that answer 0.6-2.9 s; off the loop it comes
within a second (tens of ms measured). Every later answer must come back within a second or so: Telegram's pace of
one message a second per chat sets it (the issue measured 15.7 s when the ingest ran on the event loop).
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import pytest

from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.yahoo import FakeYahoo, Instrument, read_csv_rows
from tests.ops.bot_process import stored_bars
from tests.ops.fanout import spawn, wait_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ASKER = 4242
CONFIG = """
storage: {{path: "{db}"}}
health: {{enabled: true, port: 0}}
feeds:
  yahoo: {{kind: yahoo, base_url: "{yahoo}", every_seconds: 600, timeout_seconds: 30, cache_dir: "{cache}"}}
symbols:
  - {{id: "^RUT", feed: yahoo, asset_class: index}}
  - {{id: IWM, feed: yahoo, asset_class: etf}}
rules:
  - {{id: highs, kind: new_ath, symbols: ["^RUT", IWM], by: close}}
  - {{id: weekly_moves, kind: pct_move, symbols: ["^RUT", IWM], bars: 5, min_pct: 8}}
  - {{id: drawdowns, kind: drawdown, symbols: ["^RUT", IWM]}}
channels:
  telegram: {{token: "${{TELEGRAM_BOT_TOKEN}}", base_url: "{telegram}", poll_timeout_seconds: 1,
              request_timeout_seconds: 5, register_commands: false}}
"""


class YahooInItsOwnThread:
    """Run the fake Yahoo on its own thread and loop: serving decades of rows must not slow the fake Telegram."""

    def __init__(self, yahoo: FakeYahoo) -> None:
        self.yahoo = yahoo
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-yahoo", daemon=True)

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.yahoo.start(), self.loop).result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.yahoo.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


@pytest.mark.slow
async def test_status_is_answered_while_decades_of_history_load(tmp_path, market_data):
    yahoo, telegram = FakeYahoo(), FakeTelegram(max_poll_seconds=0.5)
    series = {"^RUT": "RUT.csv", "IWM": "IWM.csv"}
    total = 0
    for symbol, name in series.items():
        rows = read_csv_rows(market_data / name)
        total += len(rows)
        yahoo.add(Instrument(symbol, rows, instrument_type="ETF" if symbol == "IWM" else "INDEX"))
    telegram.add_private_chat(ASKER)
    yahoo_thread = YahooInItsOwnThread(yahoo)
    yahoo_thread.start()
    await telegram.start()
    db, log = tmp_path / "riskon.db", tmp_path / "riskon.log"
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(db=db, yahoo=yahoo.url, cache=tmp_path / "yf", telegram=telegram.base_url))
    latencies: list[float] = []
    stored_when_answered: list[int] = []
    process = None
    try:
        process = await spawn(config, log)
        assert await wait_for(lambda: "logged in as" in log.read_text(), 60.0, process, log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            before = len(telegram.messages_to(ASKER))
            asked = time.monotonic()
            telegram.post_command(ASKER, ASKER, "/status")
            assert await wait_for(lambda n=before: len(telegram.messages_to(ASKER)) > n, 30.0, process, log)
            latencies.append(time.monotonic() - asked)
            stored_when_answered.append(stored_bars(db))
            if stored_when_answered[-1] >= total - len(series):  # the history is in (today's bars may not be)
                break
            await asyncio.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        await telegram.stop()
        yahoo_thread.stop()
    during_load = [lat for lat, stored in zip(latencies, stored_when_answered) if stored < total - len(series)]
    print(f"\nbusy start: {total:,} bars of history; /status asked {len(latencies)} times, "
          f"{len(during_load)} while the history was loading; slowest answer {max(latencies):.2f} s, "
          f"answers {[round(x, 2) for x in latencies]}, bars stored at each {stored_when_answered}")
    assert stored_when_answered[-1] >= total - len(series), "the history did not finish loading"
    assert len(during_load) >= 2, "the load was over before it could be asked about"
    assert "health endpoint on http://" in log.read_text(), "the health endpoint did not start"
    assert latencies[0] < 1.0, "the first answer waited on the bot's start-up (imports, the calendar) on the loop"
    assert max(latencies[1:]) < 2.0, "a command waited on the history load"
