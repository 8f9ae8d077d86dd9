"""End to end: the runtime `riskon run` builds, pointed at fake Yahoo and kraken, from backfill to alert."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from bot.config import parse_config
from bot.runtime import Runtime
from storage import Store
from tests.fakes.exchanges import FakeExchange, Market
from tests.fakes.yahoo import FakeYahoo, Instrument, read_csv_rows

THURSDAY = date(2026, 9, 24)
FRIDAY = date(2026, 9, 25)

# Yahoo's limit is wide: nothing here tests it, and a backfill of IWM's 6,000 days on a machine at load 10 once
# took longer than 3 s to parse ("Yahoo did not answer for IWM in time").
CONFIG = """
storage: {{path: ":memory:"}}
feeds:
  yahoo: {{kind: yahoo, base_url: "{yahoo}", every_seconds: 300, timeout_seconds: 20}}
  kraken: {{kind: exchange, exchange: kraken, base_url: "{kraken}", rate_limit_ms: 1, every_seconds: 60,
           timeout_seconds: 2, stale_after_seconds: 600}}
symbols:
  - {{id: "^RUT", feed: yahoo, asset_class: index}}
  - {{id: IWM, feed: yahoo, asset_class: etf}}
  - {{id: BTC, feed: kraken, source: BTC/USD, history_feed: yahoo, history_source: BTC-USD, asset_class: crypto}}
  - {{id: ETH, feed: kraken, source: ETH/USD, asset_class: crypto}}
rules:
  - {{id: ath, kind: new_ath, symbols: ["^RUT", IWM, BTC, ETH], by: close}}
channels:
  console: {{enabled: true}}
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def fakes(market_data):
    yahoo, kraken = FakeYahoo(), FakeExchange("kraken", hang_seconds=1.0)
    for symbol, stem, kind in (("^RUT", "RUT", "INDEX"), ("IWM", "IWM", "ETF")):
        yahoo.add(Instrument(symbol, read_csv_rows(market_data / f"{stem}.csv", until=THURSDAY), instrument_type=kind))
    yahoo.add(Instrument("BTC-USD", read_csv_rows(market_data / "BTC-USD.csv", until=THURSDAY - timedelta(days=1)),
                         timezone="UTC", instrument_type="CRYPTOCURRENCY"))
    for pair, stem in (("BTC/USD", "BTC-USD"), ("ETH/USD", "ETH-USD")):
        rows = read_csv_rows(market_data / f"{stem}.csv", until=FRIDAY)
        kraken.add(Market(pair, rows[:-1], forming=rows[-1]))
    await yahoo.start()
    await kraken.start()
    yield yahoo, kraken
    await kraken.stop()
    await yahoo.stop()


@pytest.fixture
# Not the shared `runtime` fixture (tests/conftest.py): its feeds are the fake Yahoo and Kraken servers.
async def runtime(store, fakes):
    yahoo, kraken = fakes
    config = parse_config(CONFIG.format(yahoo=yahoo.url, kraken=kraken.url), env={})
    clock = Clock(datetime(2026, 9, 25, 13, 0, tzinfo=timezone.utc))  # Friday, before the NYSE open
    made = Runtime(config, store, clock=clock, console_stream=io.StringIO(),
                   live_since=datetime(2026, 9, 25, 12, 0, tzinfo=timezone.utc))
    made.test_clock = clock
    yield made
    await made.close()


async def test_backfill_then_a_new_bar_becomes_one_alert_and_bad_data_none(runtime, fakes, market_data):
    yahoo, kraken = fakes
    await runtime.poll("yahoo")
    await runtime.poll("kraken")
    counts = runtime.store.bar_counts()
    assert counts["^RUT"] == len(read_csv_rows(market_data / "RUT.csv", until=THURSDAY))
    assert counts["IWM"] > 6000
    # BTC's history came from Yahoo (back to 2014), its newer bars from kraken; ETH has only kraken's 720 days.
    assert runtime.store.load_bars("BTC")[0].time == datetime(2014, 9, 17, tzinfo=timezone.utc)
    assert counts["BTC"] == len(read_csv_rows(market_data / "BTC-USD.csv", until=THURSDAY))
    assert counts["ETH"] == 719 and "ETH" in runtime.engine.truncated_since and "BTC" not in runtime.engine.truncated_since
    assert runtime.store.alert_count() == 0  # history is silent

    # Friday: ^RUT closes 3% above its all-time high; IWM serves a one-day spike that will revert.
    rut, iwm = yahoo.instruments["^RUT"], yahoo.instruments["IWM"]
    record = max(r.close for r in rut.rows)
    rut.rows.append(replace(rut.rows[-1], day=FRIDAY, open=record, high=record * 1.03, low=record, close=record * 1.03))
    iwm_record = max(r.close for r in iwm.rows)
    iwm.rows.append(replace(iwm.rows[-1], day=FRIDAY, high=iwm_record * 1.4, close=iwm_record * 1.4))
    runtime.test_clock.now = datetime(2026, 9, 25, 20, 30, tzinfo=timezone.utc)
    report = await runtime.poll("yahoo")
    assert [(e.symbol, e.kind) for _, e in report.alerts] == [("^RUT", "new_ath")]

    # Monday IWM is back where it was: the spike is dropped, never stored, never alerted.
    iwm.rows.append(replace(iwm.rows[-2], day=date(2026, 9, 28)))
    rut.rows.append(replace(rut.rows[-1], day=date(2026, 9, 28), close=float("nan")))  # a NaN row
    runtime.test_clock.now = datetime(2026, 9, 28, 20, 30, tzinfo=timezone.utc)
    report = await runtime.poll("yahoo")
    assert report.alerts == []
    assert FRIDAY not in [b.time.date() for b in runtime.store.load_bars("IWM")]
    assert runtime.store.alert_count() == 1


async def test_with_one_fake_down_the_others_flow_and_the_dead_one_is_stale(runtime, fakes):
    yahoo, kraken = fakes
    await runtime.poll("yahoo")
    await runtime.poll("kraken")
    await kraken.stop()

    runtime.test_clock.now = datetime(2026, 9, 25, 15, 0, tzinfo=timezone.utc)
    await runtime.poll("kraken")
    assert set(runtime.health["kraken"].symbol_errors) == {"BTC", "ETH"}
    for symbol in ("^RUT", "IWM"):
        yahoo.instruments[symbol].forming = replace(yahoo.instruments[symbol].rows[-1], day=FRIDAY)
    report = await runtime.poll("yahoo")
    assert report is not None and runtime.health["yahoo"].symbol_errors == {}

    later = runtime.test_clock.now + timedelta(minutes=11)
    marks = runtime.feeds["kraken"].stale(later)
    assert set(marks) == {"BTC", "ETH"} and marks["BTC"].since == datetime(2026, 9, 25, 13, 0, tzinfo=timezone.utc)
    assert marks["BTC"].why == runtime.health["kraken"].symbol_errors["BTC"]
    assert runtime.feeds["yahoo"].stale(later) == {}


async def test_todays_bar_is_stored_once_final_with_the_official_close_not_an_intraday_price(runtime, fakes):
    yahoo, _ = fakes
    await runtime.poll("yahoo")  # the history up to Thursday, all final
    rut = yahoo.instruments["^RUT"]
    for minutes, change in ((0, 0.0), (5, 6.5), (10, -1.75)):  # Friday's forming bar moves between polls
        rut.forming = replace(rut.rows[-1], day=FRIDAY, high=rut.rows[-1].high + 9.0, close=rut.rows[-1].close + change)
        runtime.test_clock.now = datetime(2026, 9, 25, 15, minutes, tzinfo=timezone.utc)
        await runtime.poll("yahoo")
        assert runtime.store.load_bars("^RUT")[-1].time.date() == THURSDAY  # a forming bar is never stored

    official = replace(rut.forming, close=rut.rows[-1].close + 2.25)  # the closing print, after the last poll
    rut.rows.append(official)
    rut.forming = None
    runtime.test_clock.now = datetime(2026, 9, 25, 20, 30, tzinfo=timezone.utc)  # after the confirm delay
    await runtime.poll("yahoo")

    friday = runtime.store.load_bars("^RUT")[-1]
    assert friday.time.date() == FRIDAY and friday.final
    assert (friday.high, friday.close) == (pytest.approx(official.high), pytest.approx(official.close))


async def test_a_restart_after_a_week_down_back_fills_every_missed_session_in_order(fakes, tmp_path):
    yahoo, kraken = fakes
    config = parse_config(CONFIG.format(yahoo=yahoo.url, kraken=kraken.url), env={})
    path = tmp_path / "riskon.db"
    clock = Clock(datetime(2026, 9, 25, 13, 0, tzinfo=timezone.utc))  # Friday, before the open
    first = Runtime(config, Store.open(path), clock=clock, console_stream=io.StringIO(), live_since=clock.now)
    try:
        await first.poll("yahoo")
    finally:
        await first.close()

    rut = yahoo.instruments["^RUT"]
    missed = [date(2026, 9, 25), date(2026, 9, 28), date(2026, 9, 29), date(2026, 9, 30), date(2026, 10, 1)]
    for day, row in zip(missed, rut.rows[-6:-1]):  # five sessions the bot was down for (older closes, new dates)
        rut.rows.append(replace(row, day=day))
    clock.now = datetime(2026, 10, 1, 20, 30, tzinfo=timezone.utc)  # the next Thursday, after the confirm delay
    asked = len(yahoo.chart_requests("^RUT"))
    again = Runtime(config, Store.open(path), clock=clock, console_stream=io.StringIO(), live_since=clock.now)
    try:
        await again.poll("yahoo")
        bars = again.store.load_bars("^RUT")
    finally:
        await again.close()

    assert [b.time.date() for b in bars[-6:]] == [THURSDAY, *missed] and all(b.final for b in bars[-6:])
    assert [b.close for b in bars[-5:]] == pytest.approx([r.close for r in rut.rows[-5:]])
    history = [q for q in yahoo.chart_requests("^RUT")[asked:] if "events" in q]
    assert len(history) == 1  # from the last day held on: one request, not one per missed session
    assert abs(int(history[0]["period1"]) - datetime(2026, 9, 24, tzinfo=timezone.utc).timestamp()) < 86400
