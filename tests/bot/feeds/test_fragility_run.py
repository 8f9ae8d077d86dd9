"""`riskon run` pointed at fake iShares, Yahoo and Telegram: a fragility snapshot, /status ^RUT, the rule firing."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from storage import Store
from tests.fakes.ishares import FakeIShares, Holding, cash_and_futures
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.fakes.yahoo import DailyRow, FakeYahoo, Instrument
from tests.ops.bot_process import BotProcess

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO = Path(__file__).resolve().parents[3]
TRADER = 4242


async def test_riskon_run_takes_a_snapshot_shows_it_in_status_and_fires_the_rule(tmp_path):
    telegram = await FakeTelegram(max_poll_seconds=1).start()
    telegram.add_private_chat(TRADER)
    yahoo, ishares = FakeYahoo(), FakeIShares()
    await yahoo.start()
    await ishares.start()
    today = datetime.now(timezone.utc).date()
    yahoo.add(Instrument("^RUT", [DailyRow(today - timedelta(days=40 - n), 2400 + n, 2410 + n, 2390 + n, 2405 + n)
                                  for n in range(30)]))
    # Ten members, one weighing 30 %: four of the rest lose money, and so does the heavy one: 50 % by count.
    members = [Holding("HEVY", 30.0)] + [Holding(f"SM{n}", 7.0) for n in range(9)] + [Holding("NODA", 7.0)]
    ishares.publish_holdings("IWM", today - timedelta(days=1), members + cash_and_futures())
    for n, holding in enumerate(members[:-1]):
        losing = holding.ticker == "HEVY" or n <= 4
        yahoo.publish_earnings(holding.ticker, trailing=[(date(2026, 9, 30), -2e6 if losing else 3e6)])
    # A week ago, from history obtained elsewhere: 36 %, under the 40 % mark.
    history = tmp_path / "fragility.csv"
    history.write_text("date,unprofitable_pct_count,unprofitable_pct_weight,coverage_pct\n"
                       f"{today - timedelta(days=7)},36.0,20.0,96\n")
    database = tmp_path / "riskon.db"
    store = Store.open(database)
    store.subscribe("telegram", str(TRADER))  # the trader subscribed before this run
    store.close()
    config = tmp_path / "config.yaml"
    config.write_text(f"""
storage: {{path: "{database}"}}
feeds:
  yahoo: {{kind: yahoo, base_url: "{yahoo.url}", cache_dir: "{tmp_path / 'yf'}", every_seconds: 5}}
  fragility:
    kind: fragility
    every_seconds: 1
    yahoo_base_url: "{yahoo.url}"
    ishares_base_url: "{ishares.url}"
    requests_per_second: 20
    min_coverage_pct: 80
    funds: {{IWM: {{csv: "{history}"}}}}
symbols:
  - {{id: "^RUT", feed: yahoo}}
  - {{id: "IWM:UNPROFITABLE", feed: fragility, asset_class: breadth}}
rules:
  - {{id: smallcap_fragility, kind: unprofitable_share, symbols: ["IWM:UNPROFITABLE"], levels: [40]}}
channels:
  telegram: {{token: "${{TELEGRAM_BOT_TOKEN}}", base_url: "{telegram.base_url}", poll_timeout_seconds: 1}}
""")
    bot = await BotProcess(["run", "--config", str(config)], REPO,
                           env={"TELEGRAM_BOT_TOKEN": TOKEN}).start()
    try:
        await bot.wait_for_line(r"snapshot \d+ complete", timeout=60)
        await telegram.wait_until(lambda: any("IWM fragility:" in m.text for m in telegram.messages_to(TRADER)), 30)
        telegram.post_command(TRADER, TRADER, "/status ^RUT")
        await telegram.wait_until(lambda: any("Unprofitable members" in m.text
                                              for m in telegram.messages_to(TRADER)), 30)
    finally:
        await bot.stop()
        await telegram.stop()
        await yahoo.stop()
        await ishares.stop()
    texts = [m.text for m in telegram.messages_to(TRADER)]
    alert = next(text for text in texts if "IWM fragility:" in text)
    assert ("⚠️ IWM fragility: 50 % of members lose money over 12 months, above the 40 % mark "
            "(previous snapshot 36 %)") in alert
    status = next(text for text in texts if "Unprofitable members" in text)
    assert (f"Unprofitable members: 50 % (by count), 62 % of index weight, as of {today:%Y-%m-%d} "
            "(coverage 93 %)") in status
    assert status.startswith("^RUT")
    assert len([t for t in texts if "IWM fragility:" in t]) == 1  # one crossing, one alert
