"""Forty Yahoo symbols at once: each request gets its own time limit, measured from when it is sent."""

from __future__ import annotations

import time as clock
from datetime import date, datetime, timedelta, timezone

from bot.config import SymbolConfig
from bot.feeds.yahoo import YahooFeed, YahooSettings
from tests.fakes.yahoo import FakeYahoo, Instrument, read_csv_rows

FRIDAY = date(2026, 9, 25)
OPEN_FRIDAY = datetime(2026, 9, 25, 15, 0, tzinfo=timezone.utc)
SYMBOLS = [f"S{n:02d}" for n in range(1, 41)]


async def test_forty_symbols_behind_200_ms_are_all_requested_in_the_first_cycle_and_none_times_out(
        market_data, store, tmp_path):
    rows = read_csv_rows(market_data / "IWM.csv", until=FRIDAY, last=300)
    fake = FakeYahoo(latency=0.2)
    for symbol in SYMBOLS:
        fake.add(Instrument(symbol, rows[:-1], instrument_type="ETF", forming=rows[-1]))
    await fake.start()
    # Default settings; the first cycle also asks for the cookie, the crumb and each symbol's time zone.
    feed = YahooFeed("yahoo", YahooSettings(base_url=fake.url, cache_dir=str(tmp_path)),
                     [SymbolConfig(id=s, feed="yahoo", asset_class="etf") for s in SYMBOLS], store)
    try:
        started = clock.monotonic()
        result = await feed.fetch(SYMBOLS, dict.fromkeys(SYMBOLS), OPEN_FRIDAY)
        elapsed = clock.monotonic() - started
    finally:
        await feed.close()
        await fake.stop()
    assert [s for s in SYMBOLS if not fake.chart_requests(s)] == []
    assert result.errors == {}
    assert sorted(result.bars) == SYMBOLS
    assert elapsed < 30  # bounded; the figure itself is bench_feeds'


async def test_the_time_limit_runs_from_when_a_request_is_sent_not_from_when_it_was_queued(market_data, store, tmp_path):
    rows = read_csv_rows(market_data / "IWM.csv", until=FRIDAY, last=60)
    queued = SYMBOLS[:18]
    fake = FakeYahoo(latency=0.3)
    for symbol in queued:
        fake.add(Instrument(symbol, rows[:-1], instrument_type="ETF", forming=rows[-1]))
    await fake.start()
    # One worker: the last symbol waits ~10 s for its turn, far past any limit on one request (0.8 s, each takes
    # 0.3 s). A limit started at the queue gives up on it (and leaves its thread running); a request's does not.
    feed = YahooFeed("yahoo", YahooSettings(base_url=fake.url, timeout_seconds=0.8, max_concurrency=1,
                                            cache_dir=str(tmp_path)),
                     [SymbolConfig(id=s, feed="yahoo", asset_class="etf") for s in queued], store)
    try:
        result = await feed.fetch(queued, dict.fromkeys(queued), OPEN_FRIDAY)
        assert feed.in_flight == 0
    finally:
        await feed.close()
        await fake.stop()
    assert result.errors == {}
    assert sorted(result.bars) == queued


async def test_a_request_that_hangs_is_reported_only_once_its_thread_has_given_up(market_data, store, tmp_path):
    rows = read_csv_rows(market_data / "IWM.csv", until=FRIDAY, last=60)
    fake = FakeYahoo(hang_seconds=6.0)  # far longer than the two 0.5 s tries, so the bound below has room
    for symbol in SYMBOLS[:3]:
        fake.add(Instrument(symbol, rows[:-1], instrument_type="ETF", forming=rows[-1]))
    await fake.start()
    feed = YahooFeed("yahoo", YahooSettings(base_url=fake.url, timeout_seconds=0.5, cache_dir=str(tmp_path)),
                     [SymbolConfig(id=s, feed="yahoo", asset_class="etf") for s in SYMBOLS[:3]], store)
    since = datetime(2026, 9, 24, tzinfo=timezone.utc)
    try:
        await feed.fetch(SYMBOLS[:3], dict.fromkeys(SYMBOLS[:3]), OPEN_FRIDAY)  # time zones and cookie learned
        fake.fail("S01", "timeout", times=5)
        started = clock.monotonic()
        result = await feed.fetch(SYMBOLS[:3], dict.fromkeys(SYMBOLS[:3], since), OPEN_FRIDAY)
        elapsed = clock.monotonic() - started
        assert feed.in_flight == 0  # no worker still waiting on the hung request
    finally:
        await feed.close()
        await fake.stop()
    assert "in time" in result.errors["S01"]
    assert sorted(result.bars) == ["S02", "S03"]
    # The request's own 0.5 s limit (twice: yfinance may retry once), well inside the server's hang. 2.9 s against
    # a 3 s hang left 0.1 s of margin, as test_yahoo's hang test had before it failed at load 8 (6cf9e1c).
    assert elapsed < fake.hang_seconds - 1


async def test_yahoo_throttling_a_poll_costs_one_try_a_symbol_then_no_request_until_each_back_off(
        market_data, store, tmp_path):
    rows = read_csv_rows(market_data / "IWM.csv", until=FRIDAY, last=30)
    fake = FakeYahoo()
    for symbol in SYMBOLS:
        fake.add(Instrument(symbol, rows[:-1], instrument_type="ETF", forming=rows[-1]))
    await fake.start()
    feed = YahooFeed("yahoo", YahooSettings(base_url=fake.url, cache_dir=str(tmp_path)),  # 40 at once by default
                     [SymbolConfig(id=s, feed="yahoo", asset_class="etf") for s in SYMBOLS], store)
    since = dict.fromkeys(SYMBOLS, datetime(2026, 9, 24, tzinfo=timezone.utc))
    limited = SYMBOLS[::3][:13]
    try:
        await feed.fetch(SYMBOLS, since, OPEN_FRIDAY)  # cookie, crumb and time zones learned
        for symbol in limited:  # Yahoo's edge: 429 "Too Many Requests" without Retry-After, to yfinance's retry too
            fake.fail(symbol, "status", times=2, status=429)
        asked = {s: len(fake.chart_requests(s)) for s in SYMBOLS}
        throttled = await feed.fetch(SYMBOLS, since, OPEN_FRIDAY)
        tries = {s: len(fake.chart_requests(s)) - asked[s] for s in SYMBOLS}
        waiting = [s for s in limited if feed.backoff.waiting(s, OPEN_FRIDAY)]
        again = await feed.fetch(SYMBOLS, since, OPEN_FRIDAY)
        next_tries = {s: len(fake.chart_requests(s)) - asked[s] - tries[s] for s in SYMBOLS}
        later = await feed.fetch(SYMBOLS, since, OPEN_FRIDAY + timedelta(minutes=16))  # past the longest first wait
    finally:
        await feed.close()
        await fake.stop()
    # One try a symbol; yfinance itself asks once more, with a fresh cookie, after an error status.
    assert {s: n for s, n in tries.items() if n != 1} == dict.fromkeys(limited, 2)
    assert throttled.errors == dict.fromkeys(limited, "Yahoo rate limit (429)") and waiting == limited
    assert sorted(throttled.bars) == sorted(set(SYMBOLS) - set(limited))
    assert {s: n for s, n in next_tries.items() if n} == {s: 1 for s in SYMBOLS if s not in limited}
    assert sorted(again.errors) == limited and all("backing off" in again.errors[s] for s in limited)
    assert later.errors == {} and sorted(later.bars) == SYMBOLS
