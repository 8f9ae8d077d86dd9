"""A closing bar Yahoo publishes late: the confirm poll tries again, with back-off, until it is there."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from bot.config import SymbolConfig
from bot.feeds.yahoo import YahooFeed, YahooSettings
from tests.fakes.yahoo import FakeYahoo, Instrument, read_csv_rows

FRIDAY = date(2026, 9, 25)
AFTER_CONFIRM = datetime(2026, 9, 25, 20, 20, tzinfo=timezone.utc)  # 16:20 in New York, the confirm poll
MONDAY_OPEN = datetime(2026, 9, 28, 13, 30, tzinfo=timezone.utc)


async def test_a_late_close_is_retried_with_back_off_reported_and_then_confirmed(market_data, store, tmp_path):
    rows = read_csv_rows(market_data / "RUT.csv", until=FRIDAY)
    fake = FakeYahoo()
    rut = fake.add(Instrument("^RUT", rows[:-1]))  # Friday's bar not published yet
    await fake.start()
    feed = YahooFeed("yahoo", YahooSettings(base_url=fake.url, cache_dir=str(tmp_path)),
                     [SymbolConfig(id="^RUT", feed="yahoo", csv="RUT", asset_class="index")], store)
    thursday = datetime(2026, 9, 24, tzinfo=timezone.utc)
    try:
        first = await feed.fetch(["^RUT"], {"^RUT": thursday}, AFTER_CONFIRM)
        assert first.errors["^RUT"].startswith("waiting for the close of 2026-09-25")
        retry = feed.next_poll_time(AFTER_CONFIRM)
        assert retry == AFTER_CONFIRM + timedelta(minutes=5)  # not Monday's open, 65 hours later

        later = AFTER_CONFIRM + timedelta(minutes=5)
        second = await feed.fetch(["^RUT"], {"^RUT": thursday}, later)
        assert "waiting for the close of 2026-09-25" in second.errors["^RUT"]
        assert feed.next_poll_time(later) == later + timedelta(minutes=10)  # each try waits twice as long
        assert feed.next_poll_time(later + timedelta(days=2, hours=17)) == MONDAY_OPEN  # never past the open

        rut.rows = rows  # Yahoo publishes the close
        published = later + timedelta(minutes=10)
        third = await feed.fetch(["^RUT"], {"^RUT": thursday}, published)
        assert third.errors == {}
        [bar] = [b for b in third.bars["^RUT"] if b.time.date() == FRIDAY]
        assert bar.final and bar.close == rows[-1].close
        assert feed.next_poll_time(published) == MONDAY_OPEN
    finally:
        await feed.close()
        await fake.stop()
