"""`riskon backtest --live`: history through the real yahoo feed (yfinance unmodified) against a fake Yahoo."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from bot.backtest import fetch_live_history, load_csv_history, replay_rules
from bot.config import parse_config
from tests.fakes.yahoo import FakeYahoo, Instrument, read_csv_rows

FRIDAY = date(2026, 9, 25)
AFTER_CONFIRM = datetime(2026, 9, 25, 20, 20, tzinfo=timezone.utc)  # 16:20 in New York: Friday's bar is final

CONFIG = """
feeds:
  yahoo: {{kind: yahoo, base_url: "{url}", timeout_seconds: 5}}
symbols:
  - {{id: "^RUT", feed: yahoo, csv: RUT, asset_class: index}}
  - {{id: IWN, feed: yahoo, asset_class: etf}}
rules:
  - {{id: smallcap_ath, kind: new_ath, symbols: ["^RUT", IWN], rearm_pct: 2.0}}
"""


@pytest.fixture(autouse=True)
def yfinance_cache(tmp_path_factory):
    import yfinance as yf
    from yfinance.data import YfData

    yf.set_tz_cache_location(str(tmp_path_factory.mktemp("yfcache")))
    YfData.cache_get.cache_clear()


@pytest.fixture
async def fake(market_data):
    server = FakeYahoo(hang_seconds=2.0)
    server.add(Instrument("^RUT", read_csv_rows(market_data / "RUT.csv", until=FRIDAY)))
    server.add(Instrument("IWN", read_csv_rows(market_data / "IWN.csv", until=FRIDAY), instrument_type="ETF"))
    await server.start()
    yield server
    await server.stop()


async def test_live_history_through_yahoo_gives_the_alerts_of_the_csv_history(fake, market_data, tmp_path):
    config = parse_config(CONFIG.format(url=fake.url))
    cache = tmp_path / "cache.db"
    live = await fetch_live_history(config, cache, now=AFTER_CONFIRM)
    assert live.problems == []
    assert len(live.bars["^RUT"]) == len(read_csv_rows(market_data / "RUT.csv", until=FRIDAY))
    from_csv = load_csv_history(config, market_data)
    live_alerts = (replay_rules(config, live.bars)).alerts
    csv_alerts = (replay_rules(config, from_csv.bars)).alerts
    assert len(live_alerts) > 50
    assert [(a.symbol, a.bar_time, a.values["price"]) for a in live_alerts] == \
        [(a.symbol, a.bar_time, a.values["price"]) for a in csv_alerts]

    # The second run reads the cache and asks Yahoo only for what is newer than the last stored day.
    before = len(fake.chart_requests("^RUT"))
    again = await fetch_live_history(config, cache, now=AFTER_CONFIRM)
    assert len(again.bars["^RUT"]) == len(live.bars["^RUT"])
    assert all(int(q.get("period1", 0)) > 0 for q in fake.chart_requests("^RUT")[before:])  # not period=max


async def test_a_yahoo_that_is_down_is_named_not_a_crash(fake, tmp_path):
    fake.fail("*", "status", times=50, status=503)
    config = parse_config(CONFIG.format(url=fake.url))
    history = await fetch_live_history(config, tmp_path / "cache.db", now=AFTER_CONFIRM)
    assert history.bars == {}
    assert any("^RUT" in p and "yahoo" in p for p in history.problems)
