"""`riskon run`'s start: the feeds' heavy libraries load off the event loop, so chats are answered meanwhile."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.fakes.ishares import FakeIShares, Holding, cash_and_futures
from tests.fakes.yahoo import FakeYahoo
from tests.ops.bot_process import BotProcess

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("aiohttp", "yfinance", "pandas", "ccxt", "exchange_calendars")

# Loaded by the child through PYTHONPATH: a finder that only watches (it finds nothing) and writes which thread
# first imports each heavy library, by an import statement or importlib.import_module alike.
WATCHER = f"""
import json, sys, threading
HEAVY, OUT = {HEAVY!r}, {{out!r}}
class Watcher:
    def find_spec(self, name, path=None, target=None):
        if name in HEAVY:
            with open(OUT, "a") as sink:
                sink.write(json.dumps([name, threading.current_thread() is threading.main_thread()]) + "\\n")
        return None
sys.meta_path.insert(0, Watcher())
"""


async def test_the_flows_and_fragility_feeds_import_their_libraries_off_the_event_loop(tmp_path):
    # Before: the fragility snapshot imported yfinance (with pandas, most of a second) and both feeds imported
    # aiohttp on the event loop, which stood still meanwhile: no chat answered, no other feed's request sent.
    yahoo, ishares = await FakeYahoo().start(), FakeIShares()
    await ishares.start()
    today = datetime.now(timezone.utc).date()
    ishares.publish("IWM", today - timedelta(days=1), 281_800_000, 240.0)
    members = [Holding(f"M{n}", 10.0) for n in range(10)]
    ishares.publish_holdings("IWM", today - timedelta(days=1), members + cash_and_futures())
    for member in members:
        yahoo.publish_earnings(member.ticker, trailing=[(date(2026, 9, 30), 1e6)])
    imports = tmp_path / "imports.jsonl"
    (tmp_path / "watcher").mkdir()
    (tmp_path / "watcher" / "sitecustomize.py").write_text(WATCHER.format(out=str(imports)))
    config = tmp_path / "config.yaml"
    config.write_text(f"""
storage: {{path: "{tmp_path / 'riskon.db'}"}}
feeds:
  flows: {{kind: flows, every_seconds: 60, yahoo_base_url: "{yahoo.url}", ishares_base_url: "{ishares.url}",
           funds: {{IWM: {{}}}}}}
  fragility: {{kind: fragility, every_seconds: 1, yahoo_base_url: "{yahoo.url}", ishares_base_url: "{ishares.url}",
               requests_per_second: 20, funds: {{IWM: {{}}}}}}
symbols:
  - {{id: IWM, feed: flows, asset_class: etf}}
  - {{id: "IWM:UNPROFITABLE", feed: fragility, asset_class: breadth}}
rules:
  - {{id: smallcap_fragility, kind: unprofitable_share, symbols: ["IWM:UNPROFITABLE"], levels: [40]}}
""")
    bot = await BotProcess(["run", "--config", str(config)], REPO,
                           env={"PYTHONPATH": f"{tmp_path / 'watcher'}:{REPO}"}).start()
    try:
        await bot.wait_for_line(r"snapshot \d+ complete", timeout=60)
    finally:
        await bot.stop()
        await yahoo.stop()
        await ishares.stop()
    first = {}
    for line in imports.read_text().splitlines():
        name, on_main_thread = json.loads(line)
        first.setdefault(name, on_main_thread)
    assert {"aiohttp", "yfinance", "pandas"} <= set(first), first  # the run used them: the check means something
    assert not [name for name, on_main_thread in first.items() if on_main_thread], first
