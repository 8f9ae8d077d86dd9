"""The composite feed: an altcoin index from members' stored bars (real CSV history)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from alerts.bars import Bar
from bot.config import SymbolConfig
from bot.feeds.composite import CompositeFeed
from bot.feeds.settings import CompositeIndex, CompositeSettings
from tests.fakes.yahoo import read_csv_rows

MEMBERS = ["SOL", "XRP", "ADA", "DOGE", "BNB"]
BASE = date(2025, 7, 1)
LAST = date(2025, 8, 13)
NOW = datetime(2025, 8, 14, 6, 0, tzinfo=timezone.utc)


def utc_day(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


@pytest.fixture
def members(market_data, store):
    closes = {}
    for member in MEMBERS:
        rows = [r for r in read_csv_rows(market_data / f"{member}-USD.csv", until=LAST) if r.day >= date(2025, 6, 1)]
        store.upsert_bars(member, [Bar(utc_day(r.day), r.open, r.high, r.low, r.close, r.volume or 0) for r in rows])
        closes[member] = {r.day: r.close for r in rows}
    return closes


def make_feed(store, **index) -> CompositeFeed:
    settings = CompositeSettings(indexes={"ALTS": CompositeIndex(members=MEMBERS, **index)}, stale_after_seconds=3600)
    return CompositeFeed("alts", settings, [SymbolConfig(id="ALTS", feed="alts", asset_class="composite")], store)


async def test_equal_weights_start_at_100_on_the_base_date(store, members):
    """Equal weights, rebalanced daily: 100 on the base date, then the members' mean daily return each day."""
    feed = make_feed(store, base_date=BASE)
    result = await feed.fetch(["ALTS"], {"ALTS": None}, NOW)

    bars = {b.time.date(): b for b in result.bars["ALTS"]}
    assert bars[BASE].close == pytest.approx(100.0)
    # Rebalanced daily: each day's return is the mean of the members' returns that day.
    expected, day = 100.0, BASE
    while day < LAST:
        following = day + timedelta(days=1)
        expected *= sum(members[m][following] / members[m][day] for m in MEMBERS) / len(MEMBERS)
        day = following
    assert bars[LAST].close == pytest.approx(expected)
    assert min(bars) == date(2025, 6, 1) and all(b.final for b in bars.values())
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars.values())


async def test_supply_weights_make_a_market_cap_index(store, members):
    supply = {"SOL": 5.4e8, "XRP": 5.9e10, "ADA": 3.6e10, "DOGE": 1.5e11, "BNB": 1.4e8}
    feed = make_feed(store, base_date=BASE, weighting="supply", supply=supply)
    result = await feed.fetch(["ALTS"], {"ALTS": None}, NOW)

    last = result.bars["ALTS"][-1]
    cap = lambda day: sum(supply[m] * members[m][day] for m in MEMBERS)  # noqa: E731
    assert last.close == pytest.approx(100 * cap(LAST) / cap(BASE))


async def test_a_later_poll_continues_from_the_stored_close(store, members):
    """With the index stored up to a day, the next poll reads only newer member bars and matches a full run."""
    full = (await make_feed(store, base_date=BASE).fetch(["ALTS"], {"ALTS": None}, NOW)).bars["ALTS"]
    cut = next(i for i, b in enumerate(full) if b.time.date() == LAST - timedelta(days=5))
    store.upsert_bars("ALTS", full[:cut + 1])
    later = await make_feed(store).fetch(["ALTS"], {"ALTS": full[cut].time}, NOW)
    assert [b.time for b in later.bars["ALTS"]] == [b.time for b in full[cut + 1:]]
    assert [b.close for b in later.bars["ALTS"]] == pytest.approx([b.close for b in full[cut + 1:]], rel=1e-12)


@pytest.mark.parametrize("index", [{}, {"weighting": "supply", "supply": {"SOL": 5.4e8, "XRP": 5.9e10, "ADA": 3.6e10,
                                                                    "DOGE": 1.5e11, "BNB": 1.4e8}}])
async def test_the_poll_of_the_day_after_the_stored_close_matches_a_full_run(store, members, index):
    """A day's poll (each member's stored day and the new one) gives the full run's bar, open, high, low and close."""
    full = (await make_feed(store, base_date=BASE, **index).fetch(["ALTS"], {"ALTS": None}, NOW)).bars["ALTS"]
    store.upsert_bars("ALTS", full[:-1])
    later = (await make_feed(store, **index).fetch(["ALTS"], {"ALTS": full[-2].time}, NOW)).bars["ALTS"]
    assert [b.time for b in later] == [full[-1].time]
    got, want = later[0], full[-1]
    assert [got.open, got.high, got.low, got.close] == pytest.approx([want.open, want.high, want.low, want.close],
                                                                      rel=1e-12)


async def test_golden_alts_from_the_stitched_histories_runs_to_march_2026(store, tmp_path, market_data):
    """ALTS over the default config's member histories (Yahoo, then Binance): 2020-04-10 to 2026-03-16.

    It used to end 2025-08-13 with the Yahoo files, and, never rebalanced, be mostly SOL and DOGE by late
    2021. Rebalanced daily, its return on 2021-11-08 is the plain mean of the five members' returns.
    """
    from pathlib import Path

    from bot.config import load_config
    from bot.feeds.history import load_symbol_history

    config = load_config(Path(__file__).resolve().parents[3] / "config.yaml", env={})
    histories = {m: load_symbol_history(market_data, config.symbol(m)).bars for m in MEMBERS}
    for member, bars in histories.items():
        store.upsert_bars(member, bars)
    settings = CompositeSettings(**config.feeds["alts"].settings)
    feed = CompositeFeed("alts", settings, [config.symbol("ALTS")], store)
    alts = (await feed.fetch(["ALTS"], {"ALTS": None}, datetime(2026, 9, 26, tzinfo=timezone.utc))).bars["ALTS"]
    assert (alts[0].time.date(), alts[-1].time.date()) == (date(2020, 4, 10), date(2026, 3, 16))
    closes = {m: {b.time.date(): b.close for b in bars} for m, bars in histories.items()}
    index = {b.time.date(): b.close for b in alts}
    day, before = date(2021, 11, 8), date(2021, 11, 7)
    mean = sum(closes[m][day] / closes[m][before] for m in MEMBERS) / len(MEMBERS)
    assert index[day] / index[before] == pytest.approx(mean, rel=1e-12)


async def test_later_polls_return_only_newer_days(store, members):
    feed = make_feed(store, base_date=BASE)
    result = await feed.fetch(["ALTS"], {"ALTS": utc_day(LAST - timedelta(days=2))}, NOW)
    assert [b.time.date() for b in result.bars["ALTS"]] == [LAST - timedelta(days=1), LAST]
    full = await make_feed(store, base_date=BASE).fetch(["ALTS"], {"ALTS": None}, NOW)
    assert result.bars["ALTS"][-1].close == pytest.approx(full.bars["ALTS"][-1].close)


async def test_a_lagging_member_holds_the_index_back_and_is_named(store, members):
    store.db.execute("delete from bars where symbol = 'DOGE' and time >= ?", [utc_day(LAST).isoformat()])
    feed = make_feed(store, base_date=BASE)
    result = await feed.fetch(["ALTS"], {"ALTS": None}, NOW)

    assert result.bars["ALTS"][-1].time.date() == LAST - timedelta(days=1)
    later = NOW + timedelta(hours=2)
    assert "DOGE" in feed.stale(later)["ALTS"].why


async def test_a_base_date_no_member_has_is_an_error_not_a_crash(store, members):
    feed = make_feed(store, base_date=date(2019, 1, 1))
    result = await feed.fetch(["ALTS"], {"ALTS": None}, NOW)
    assert result.bars == {} and "base date" in result.errors["ALTS"]


@pytest.mark.parametrize(
    "index, message",
    [
        ({"members": ["SOL", "XRP"], "weighting": "supply", "supply": {"SOL": 1.0}}, "missing XRP"),
        ({"members": ["SOL", "SOL"]}, "listed twice"),
        ({"members": ["SOL"], "supply": {"ETH": 1.0}}, "not members"),
        ({"members": []}, "at least 1"),
    ],
)
def test_bad_index_definitions_are_named(index, message):
    with pytest.raises(ValidationError, match=message):
        CompositeIndex(**index)
