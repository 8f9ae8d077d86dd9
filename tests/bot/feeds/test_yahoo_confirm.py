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
        # Not Monday's open, 65 hours later: within 5 minutes (the project's back-off, jittered to half-full).
        assert AFTER_CONFIRM + timedelta(minutes=2.5) <= retry <= AFTER_CONFIRM + timedelta(minutes=5)
        assert feed.next_poll_time(AFTER_CONFIRM) == retry  # asking again does not draw a new wait

        later = AFTER_CONFIRM + timedelta(minutes=5)
        second = await feed.fetch(["^RUT"], {"^RUT": thursday}, later)
        assert "waiting for the close of 2026-09-25" in second.errors["^RUT"]
        # Each try's window is twice as long as the one before.
        assert later + timedelta(minutes=5) <= feed.next_poll_time(later) <= later + timedelta(minutes=10)
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


async def test_late_closes_of_many_feeds_are_retried_at_spread_times(market_data, store, tmp_path):
    """Bots that missed the same late close do not all ask Yahoo again in the same second (jittered back-off)."""
    rows = read_csv_rows(market_data / "RUT.csv", until=FRIDAY)
    fake = FakeYahoo()
    fake.add(Instrument("^RUT", rows[:-1]))  # Friday's bar not published yet
    await fake.start()
    thursday = datetime(2026, 9, 24, tzinfo=timezone.utc)
    retries = []
    try:
        for _ in range(4):
            feed = YahooFeed("yahoo", YahooSettings(base_url=fake.url, cache_dir=str(tmp_path)),
                             [SymbolConfig(id="^RUT", feed="yahoo", csv="RUT", asset_class="index")], store)
            try:
                missed = await feed.fetch(["^RUT"], {"^RUT": thursday}, AFTER_CONFIRM)
                assert "waiting for the close of 2026-09-25" in missed.errors["^RUT"]
                retries.append(feed.next_poll_time(AFTER_CONFIRM))
            finally:
                await feed.close()
    finally:
        await fake.stop()
    assert all(AFTER_CONFIRM + timedelta(minutes=2.5) <= r <= AFTER_CONFIRM + timedelta(minutes=5) for r in retries)
    assert len(set(retries)) > 1, retries
