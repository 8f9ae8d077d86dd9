"""The exchange feed, with ccxt unmodified, against fake kraken and binance servers serving real CSV history."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from bot.config import SymbolConfig
from bot.feeds.exchange import ExchangeFeed, ExchangeSettings
from bot.feeds.exchange_client import redirect_urls
from tests.fakes.exchanges import FakeExchange, Market
from tests.fakes.yahoo import read_csv_rows

TODAY = date(2026, 9, 24)
NOON = datetime(2026, 9, 24, 12, 0, tzinfo=timezone.utc)
YESTERDAY = datetime(2026, 9, 23, tzinfo=timezone.utc)


def crypto(*pairs: str, feed: str = "x") -> list[SymbolConfig]:
    return [SymbolConfig(id=p.split("/")[0], feed=feed, source=p, asset_class="crypto") for p in pairs]


def market(folder, stem: str, symbol: str, until: date = TODAY) -> Market:
    rows = read_csv_rows(folder / f"{stem}.csv", until=until)
    return Market(symbol, rows[:-1], forming=rows[-1]) if rows[-1].day == until else Market(symbol, rows)


async def started(kind: str, *markets: Market, latency: float = 0.0) -> FakeExchange:
    fake = FakeExchange(kind, latency=latency, hang_seconds=2.0)
    for item in markets:
        fake.add(item)
    await fake.start()
    return fake


def make_feed(fake: FakeExchange, pairs, store=None, **settings) -> ExchangeFeed:
    options = dict(exchange=fake.kind, base_url=fake.url, rate_limit_ms=1, timeout_seconds=5)
    options.update(settings)
    return ExchangeFeed("x", ExchangeSettings(**options), crypto(*pairs), store)


@pytest.fixture
async def kraken(market_data):
    fake = await started("kraken", market(market_data, "BTC-USD", "BTC/USD"), market(market_data, "ETH-USD", "ETH/USD"))
    yield fake
    await fake.stop()


@pytest.fixture
async def binance(market_data):
    fake = await started("binance", market(market_data, "BTC-USD", "BTC/USDT"),
                         market(market_data, "ETH-USD", "ETH/USDT"))
    yield fake
    await fake.stop()


def test_every_api_host_is_redirected_and_websockets_keep_their_scheme():
    urls = {"api": {"public": "https://api.binance.com/api/v3", "ws": {"spot": "wss://stream.binance.com:9443/ws"}},
            "doc": "not a url"}
    assert redirect_urls(urls, "http://127.0.0.1:9") == {
        "api": {"public": "http://127.0.0.1:9/api/v3", "ws": {"spot": "ws://127.0.0.1:9/ws"}}, "doc": "not a url"}


async def test_kraken_backfill_reports_where_its_720_candles_start(kraken, store):
    feed = make_feed(kraken, ["BTC/USD", "ETH/USD"], store)
    try:
        result = await feed.fetch(["BTC", "ETH"], {"BTC": None, "ETH": None}, NOON)
        assert result.errors == {}
        btc = result.bars["BTC"]
        assert len(btc) == 720 and not btc[-1].final and all(b.final for b in btc[:-1])
        assert result.truncated_since["BTC"] == btc[0].time == datetime(2024, 10, 5, tzinfo=timezone.utc)
        # Remembered across restarts: a later feed reports it without backfilling again.
        again = make_feed(kraken, ["BTC/USD", "ETH/USD"], store)
        later = await again.fetch(["BTC"], {"BTC": YESTERDAY}, NOON)
        assert later.truncated_since["BTC"] == btc[0].time
        await again.close()
    finally:
        await feed.close()


async def test_binance_pages_back_to_the_listing_and_is_not_truncated(binance, market_data):
    feed = make_feed(binance, ["BTC/USDT"])
    try:
        result = await feed.fetch(["BTC"], {"BTC": None}, NOON)
        bars = result.bars["BTC"]
        assert bars[0].time == datetime(2014, 9, 17, tzinfo=timezone.utc)
        assert len(bars) == len(read_csv_rows(market_data / "BTC-USD.csv", until=TODAY))
        assert binance.count("/api/v3/klines") == 5  # 4,391 days in pages of 1,000
        assert "BTC" not in result.truncated_since
        times = [b.time for b in bars]
        assert times == sorted(set(times))
    finally:
        await feed.close()


async def test_steady_polls_take_one_tickers_request_for_every_symbol(binance):
    feed = make_feed(binance, ["BTC/USDT", "ETH/USDT"])
    try:
        await feed.fetch(["BTC", "ETH"], {"BTC": None, "ETH": None}, NOON)
        before = len(binance.requests)
        binance.markets["BTC/USDT"].forming = replace(binance.markets["BTC/USDT"].forming, close=90000.0,
                                                      high=90000.0)
        result = await feed.fetch(["BTC", "ETH"], {"BTC": YESTERDAY, "ETH": YESTERDAY}, NOON + timedelta(minutes=5))
        assert [p for p, _ in binance.requests[before:]] == ["/api/v3/ticker/24hr"]
        forming = result.bars["BTC"][-1]
        assert not forming.final and forming.close == 90000.0 and forming.high == 90000.0
        assert forming.open == binance.markets["BTC/USDT"].forming.open  # today's exact open, from the candle
    finally:
        await feed.close()


async def test_a_new_day_fetches_the_closed_bar(binance):
    feed = make_feed(binance, ["BTC/USDT"])
    try:
        await feed.fetch(["BTC"], {"BTC": None}, NOON)
        closed = binance.markets["BTC/USDT"].forming
        binance.markets["BTC/USDT"].rows.append(closed)
        binance.markets["BTC/USDT"].forming = replace(closed, day=TODAY + timedelta(days=1), open=closed.close,
                                                      high=closed.close, low=closed.close)
        next_morning = NOON + timedelta(hours=13)
        result = await feed.fetch(["BTC"], {"BTC": YESTERDAY}, next_morning)
        bars = result.bars["BTC"]
        assert [(b.time.date(), b.final) for b in bars] == [(TODAY, True), (TODAY + timedelta(days=1), False)]
        assert bars[0].close == closed.close
    finally:
        await feed.close()


async def test_a_failed_price_request_still_delivers_the_closed_day(binance):
    feed = make_feed(binance, ["BTC/USDT"])
    try:
        await feed.fetch(["BTC"], {"BTC": None}, NOON)
        closed = binance.markets["BTC/USDT"].forming
        binance.markets["BTC/USDT"].rows.append(closed)
        binance.markets["BTC/USDT"].forming = replace(closed, day=TODAY + timedelta(days=1))
        binance.fail("/api/v3/ticker/24hr", "status", status=502)
        result = await feed.fetch(["BTC"], {"BTC": YESTERDAY}, NOON + timedelta(hours=13))
        assert [(b.time.date(), b.final) for b in result.bars["BTC"]] == [(TODAY, True)]
        assert "unavailable" in result.errors["BTC"]
    finally:
        await feed.close()


async def test_symbols_are_fetched_concurrently(market_data):
    stems = ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD"]
    markets = [market(market_data, s, s.replace("-USD", "/USDT"), until=date(2025, 8, 13)) for s in stems]
    fake = await started("binance", *markets, latency=0.2)
    feed = make_feed(fake, [m.symbol for m in markets], rate_limit_ms=0)
    try:
        now = datetime(2025, 8, 13, 12, tzinfo=timezone.utc)
        since = {m.base: datetime(2025, 8, 10, tzinfo=timezone.utc) for m in markets}
        await feed.fetch(list(since), since, now)  # markets loaded; candles for today's open
        fake.answer_together(5)  # five symbols asked one after another would wait out the fake's 5 s hold
        feed._today.clear()
        result = await feed.fetch(list(since), since, now)
        assert result.errors == {} and len(result.bars) == 5
        assert fake.max_in_flight == 5
    finally:
        await feed.close()
        await fake.stop()


@pytest.mark.parametrize(
    "fault, status, times, expected",
    [
        ("status", 502, 1, "unavailable"),
        # ccxt hands an unparsable body on as text, which yields no candle: never data, and an error at the end.
        ("malformed", 200, 60, "no candles"),
        ("timeout", 200, 1, "in time"),
    ],
)
async def test_one_failing_symbol_never_stops_the_others(binance, fault, status, times, expected):
    feed = make_feed(binance, ["BTC/USDT", "ETH/USDT"], timeout_seconds=0.5)
    try:
        binance.fail("BTCUSDT", fault, status=status, times=times)
        result = await feed.fetch(["BTC", "ETH"], {"BTC": None, "ETH": None}, NOON)
        assert expected in result.errors["BTC"]
        assert "BTC" not in result.bars and len(result.bars["ETH"]) > 3000
        again = await feed.fetch(["BTC", "ETH"], {"BTC": None, "ETH": YESTERDAY}, NOON + timedelta(seconds=1))
        assert "backing off" in again.errors["BTC"] and "ETH" in again.bars
    finally:
        await feed.close()


async def test_a_malformed_page_mid_backfill_is_asked_again_not_taken(binance, market_data):
    feed = make_feed(binance, ["BTC/USDT"])
    try:
        binance.fail("BTCUSDT", "malformed")
        result = await feed.fetch(["BTC"], {"BTC": None}, NOON)
        assert result.errors == {}
        assert len(result.bars["BTC"]) == len(read_csv_rows(market_data / "BTC-USD.csv", until=TODAY))
    finally:
        await feed.close()


async def test_kraken_5xx_on_one_pair_leaves_the_other(kraken):
    feed = make_feed(kraken, ["BTC/USD", "ETH/USD"])
    try:
        kraken.fail("XXBTZUSD", "status", status=503)
        result = await feed.fetch(["BTC", "ETH"], {"BTC": None, "ETH": None}, NOON)
        assert "unavailable" in result.errors["BTC"] and len(result.bars["ETH"]) == 720
    finally:
        await feed.close()


async def test_429_with_retry_after_pauses_the_symbol_that_long(binance):
    feed = make_feed(binance, ["BTC/USDT"])
    try:
        binance.fail("BTCUSDT", "status", status=429, retry_after=300)
        result = await feed.fetch(["BTC"], {"BTC": None}, NOON)
        assert "rate limited" in result.errors["BTC"]
        assert feed.backoff.waiting("BTC", NOON + timedelta(seconds=299)) is not None
    finally:
        await feed.close()


async def test_an_empty_answer_is_an_error_not_an_empty_history(binance):
    feed = make_feed(binance, ["BTC/USDT"])
    try:
        binance.fail("BTCUSDT", "empty", times=60)
        result = await feed.fetch(["BTC"], {"BTC": None}, NOON)
        assert "no candles" in result.errors["BTC"] and "BTC" not in result.bars
    finally:
        await feed.close()


async def test_bad_prices_and_a_reverting_spike_are_dropped(binance):
    rows = binance.markets["BTC/USDT"].rows
    rows[-10] = replace(rows[-10], close=0.0, low=0.0)  # an impossible price
    rows[-5] = replace(rows[-5], close=rows[-5].close * 3, high=rows[-5].close * 3)  # a print that reverts
    feed = make_feed(binance, ["BTC/USDT"])
    try:
        result = await feed.fetch(["BTC"], {"BTC": None}, NOON)
        days = [b.time.date() for b in result.bars["BTC"]]
        assert rows[-10].day not in days and rows[-5].day not in days and rows[-4].day in days
    finally:
        await feed.close()


async def test_the_stream_feeds_the_forming_bar_and_polling_covers_when_it_drops(binance):
    feed = make_feed(binance, ["BTC/USDT"], stream=True)
    try:
        await feed.fetch(["BTC"], {"BTC": None}, NOON)
        for _ in range(100):
            if feed.streams.heard("BTC"):
                break
            await asyncio.sleep(0.05)
        assert feed.streams.heard("BTC") and any("btcusdt@" in s for s in binance.ws_subscriptions)
        binance.markets["BTC/USDT"].forming = replace(binance.markets["BTC/USDT"].forming, close=85000.0,
                                                      high=85000.0)
        for _ in range(200):  # bounded: the socket's next ticker carries the new close
            if feed.streams.fresh_price("BTC", streaming=False) == 85000.0:
                break
            await asyncio.sleep(0.05)
        tickers_before = binance.count("/api/v3/ticker/24hr")
        result = await feed.fetch(["BTC"], {"BTC": YESTERDAY}, NOON)
        assert binance.count("/api/v3/ticker/24hr") == tickers_before  # the socket answered
        assert result.bars["BTC"][-1].close == 85000.0

        binance.ws_enabled = False
        await binance.drop_websockets()
        for _ in range(100):
            if not feed.streams.heard("BTC"):
                break
            await asyncio.sleep(0.05)
        result = await feed.fetch(["BTC"], {"BTC": YESTERDAY}, NOON + timedelta(minutes=1))
        assert binance.count("/api/v3/ticker/24hr") == tickers_before + 1  # polled while the socket is down
        assert result.bars["BTC"][-1].close == 85000.0
    finally:
        await feed.close()


async def test_close_releases_the_http_session(binance):
    feed = make_feed(binance, ["BTC/USDT"])
    await feed.fetch(["BTC"], {"BTC": YESTERDAY}, NOON)
    exchange = feed.exchange
    await feed.close()
    assert feed.exchange is None
    assert exchange.session is None or exchange.session.closed
