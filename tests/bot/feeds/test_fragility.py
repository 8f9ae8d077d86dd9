"""Fragility feed over real HTTP: iShares holdings CSV in, Yahoo fundamentals-timeseries through yfinance."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from yfinance.data import YfData

from alerts.fragility import MemberIncome, tally, trailing_from_quarters
from bot.feeds.fragility import FragilityFeed, FragilitySettings
from bot.feeds.holdings import HoldingsError, parse_ishares_holdings
from storage import Store
from storage.fragility import FragilityStore
from tests.fakes.ishares import FakeIShares, Holding, cash_and_futures
from tests.fakes.yahoo import FakeYahoo

NOW = datetime(2026, 11, 27, 22, tzinfo=timezone.utc)
AS_OF = date(2026, 11, 26)
QUARTERS = [date(2025, 12, 31), date(2026, 3, 31), date(2026, 6, 30), date(2026, 9, 30)]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
async def fakes():
    yahoo, ishares = FakeYahoo(), FakeIShares()
    await yahoo.start()
    await ishares.start()
    yield yahoo, ishares
    await yahoo.stop()
    await ishares.stop()


def settings(yahoo: FakeYahoo, ishares: FakeIShares, **overrides) -> FragilitySettings:
    options = dict(yahoo_base_url=yahoo.url, ishares_base_url=ishares.url, requests_per_second=50,
                   funds={"IWM": {}}, timeout_seconds=2, max_attempts=2)
    options.update(overrides)
    return FragilitySettings(**options)


def publish_index(yahoo: FakeYahoo, ishares: FakeIShares) -> None:
    """Five members and the cash and futures rows of a real file: two losing money, one profitable, two unknown."""
    ishares.publish_holdings("IWM", AS_OF, [
        Holding("LOSE", 30.0), Holding("EARN", 40.0), Holding("QTRS", 10.0), Holding("NONE", 5.0),
        Holding("GONE", 5.0), *cash_and_futures()])
    yahoo.publish_earnings("LOSE", trailing=[(date(2026, 9, 30), -12_000_000.0)])
    yahoo.publish_earnings("EARN", trailing=[(date(2026, 9, 30), 80_000_000.0)],
                           quarterly=[(q, 20_000_000.0) for q in QUARTERS])
    # No trailing figure: the last four quarters sum to a loss.
    yahoo.publish_earnings("QTRS", quarterly=[(date(2025, 9, 30), 9e6)] + [(q, v) for q, v in
                                                                           zip(QUARTERS, (-4e6, 1e6, -2e6, -1e6))])
    yahoo.delist("GONE")  # listed by iShares, unknown to Yahoo


async def snapshot(feed: FragilityFeed, now: datetime = NOW, polls: int = 20):
    """Poll until the feed hands back a finished snapshot's bars (bounded)."""
    for _ in range(polls):
        result = await feed.fetch([], {}, now)
        if result.bars or result.errors:
            return result
        if feed.table.running("IWM") is None and feed.table.last_finished("IWM") is not None:
            return result
    raise AssertionError(f"no snapshot finished in {polls} polls")


async def test_a_snapshot_counts_losing_members_by_count_and_by_weight(fakes, store):
    yahoo, ishares = fakes
    publish_index(yahoo, ishares)
    feed = FragilityFeed("fragility", settings(yahoo, ishares, min_coverage_pct=80), store=store)
    try:
        result = await snapshot(feed)
    finally:
        await feed.close()
    finished = feed.table.last_finished("IWM")
    assert finished.status == "complete"
    assert (finished.members, finished.covered, finished.unprofitable) == (5, 3, 2)
    assert finished.unprofitable_pct_count == pytest.approx(200 / 3)
    assert finished.unprofitable_pct_weight == pytest.approx(100 * 40 / 80)  # LOSE 30 + QTRS 10 of 80 covered
    assert finished.coverage_pct_weight == pytest.approx(100 * 80 / 90)
    assert "NONE" in finished.note and "GONE" in finished.note
    assert [b.close for b in result.bars["IWM:UNPROFITABLE"]] == [pytest.approx(200 / 3)]
    assert [b.close for b in result.bars["IWM:UNPROFITABLE_WEIGHT"]] == [pytest.approx(50.0)]
    # Cash, money-market, futures and margin rows are never asked about.
    asked = {path.rsplit("/", 1)[1] for path, q in yahoo.requests if "type" in q}
    assert asked == {"LOSE", "EARN", "QTRS", "NONE", "GONE"}
    # Trailing where Yahoo has it; quarterly only where it does not; nothing more for a 404.
    assert all(q["type"].startswith("trailing") for q in yahoo.income_requests("EARN"))
    assert any(q["type"].startswith("quarterly") for q in yahoo.income_requests("QTRS"))
    assert not any(q["type"].startswith("quarterly") for q in yahoo.income_requests("GONE"))


async def test_coverage_below_the_threshold_marks_the_snapshot_incomplete_and_gives_no_bar(fakes, store):
    yahoo, ishares = fakes
    publish_index(yahoo, ishares)
    feed = FragilityFeed("fragility", settings(yahoo, ishares), store=store)  # default: 90% of weight
    try:
        result = await snapshot(feed)
    finally:
        await feed.close()
    finished = feed.table.last_finished("IWM")
    assert finished.status == "incomplete" and "coverage 88.9%" in finished.note
    assert result.bars == {}
    assert feed.next_poll_time(NOW) == finished.finished_at + timedelta(minutes=60)


async def test_a_429_with_retry_after_holds_every_request_back_that_long(fakes, store):
    yahoo, ishares = fakes
    publish_index(yahoo, ishares)
    yahoo.rate_limit(1.0, retry_after=1)
    feed = FragilityFeed("fragility", settings(yahoo, ishares, min_coverage_pct=80), store=store)
    try:
        await snapshot(feed)
    finally:
        await feed.close()
    assert feed.table.last_finished("IWM").status == "complete"
    # yfinance retries once by itself; after that riskon waits out the Retry-After instead of asking again.
    assert 1 <= len(yahoo.limited) <= 4
    after = [t for t in yahoo.income_times if t > yahoo.limited[-1]]
    assert after and after[0] - yahoo.limited[-1] >= 0.9


async def test_a_member_delisted_mid_snapshot_is_reported_and_the_snapshot_finishes(fakes, store):
    yahoo, ishares = fakes
    publish_index(yahoo, ishares)
    yahoo.publish_earnings("GONE", trailing=[(date(2026, 9, 30), 5e6)])  # listed when the snapshot starts
    feed = FragilityFeed("fragility", settings(yahoo, ishares, min_coverage_pct=80, work_per_poll_seconds=0.05),
                         store=store)
    try:
        await feed.fetch([], {}, NOW)  # the snapshot starts, with GONE among the members
        assert feed.table.running("IWM") is not None
        yahoo.delist("GONE")
        await snapshot(feed, polls=200)
    finally:
        await feed.close()
    finished = feed.table.last_finished("IWM")
    assert finished.status == "complete" and finished.members == 5
    incomes = {m.ticker: m for m in feed.table.incomes(finished.id, NOW - timedelta(days=1), date(2025, 1, 1))}
    assert incomes["GONE"].net_income is None and "404" in incomes["GONE"].problem


async def test_a_failing_member_is_tried_again_then_left_out_without_stopping_the_snapshot(fakes, store):
    yahoo, ishares = fakes
    publish_index(yahoo, ishares)
    yahoo.publish_earnings("NONE", trailing=[(date(2026, 9, 30), 1e6)])
    yahoo.fail("income:LOSE", "status", times=50, status=502)
    feed = FragilityFeed("fragility", settings(yahoo, ishares, min_coverage_pct=50), store=store)
    try:
        await snapshot(feed)
    finally:
        await feed.close()
    finished = feed.table.last_finished("IWM")
    assert finished.status == "complete" and finished.covered == 3  # EARN, QTRS, NONE
    incomes = {m.ticker: m for m in feed.table.incomes(finished.id, NOW - timedelta(days=1), date(2025, 1, 1))}
    assert "502" in incomes["LOSE"].problem
    attempts = feed.store.db.execute("select attempts from fragility_members where ticker = 'LOSE'").fetchone()[0]
    assert attempts == 2


async def test_readings_are_reused_within_the_interval_and_renewed_after_it(fakes, store):
    yahoo, ishares = fakes
    publish_index(yahoo, ishares)
    feed = FragilityFeed("fragility", settings(yahoo, ishares, min_coverage_pct=80), store=store)
    try:
        await snapshot(feed)
        first = len(yahoo.income_requests())
        assert feed.request_snapshot("IWM") == ["IWM"]  # on demand: out of schedule
        await snapshot(feed, NOW + timedelta(hours=1))
        assert len(yahoo.income_requests()) == first  # every reading is younger than the interval
        assert feed.next_poll_time(NOW + timedelta(hours=2)) == NOW + timedelta(hours=1, days=7)
        yahoo.publish_earnings("EARN", trailing=[(date(2026, 9, 30), -3e6)])  # restated
        # A week on, yfinance's URLs end on another day; here the wall clock has not moved, so its memo is cleared.
        YfData.cache_get.cache_clear()
        await snapshot(feed, NOW + timedelta(days=7, hours=1))
    finally:
        await feed.close()
    assert len(yahoo.income_requests()) > first
    snapshots = feed.store.db.execute("select status, unprofitable from fragility_snapshots order by id").fetchall()
    assert snapshots == [("complete", 2), ("complete", 2), ("complete", 3)]


async def test_the_time_budget_closes_a_snapshot_with_what_was_read(fakes, store):
    yahoo, ishares = fakes
    publish_index(yahoo, ishares)
    feed = FragilityFeed("fragility", settings(yahoo, ishares, requests_per_second=2, time_budget_minutes=0.02),
                         store=store)
    try:
        await snapshot(feed)
    finally:
        await feed.close()
    finished = feed.table.last_finished("IWM")
    assert finished.status == "incomplete"
    assert "time budget of 0.02 minutes ran out" in finished.note


CRASHING_RUN = """
import asyncio, sys
from datetime import datetime, timezone
from bot.feeds.fragility import FragilityFeed, FragilitySettings
from storage import Store

async def main():
    store = Store.open(sys.argv[1])
    settings = FragilitySettings(yahoo_base_url=sys.argv[2], ishares_base_url=sys.argv[3], requests_per_second=20,
                                 funds={"IWM": {}}, min_coverage_pct=80)
    feed = FragilityFeed("fragility", settings, store=store)
    for _ in range(100):
        await feed.fetch([], {}, datetime(2026, 11, 27, 22, tzinfo=timezone.utc))

asyncio.run(main())
"""


async def test_a_crash_mid_snapshot_resumes_where_it_stopped(fakes, tmp_path):
    yahoo, ishares = fakes
    tickers = [f"M{n:02d}" for n in range(30)]
    ishares.publish_holdings("IWM", AS_OF, [Holding(t, 100 / 30) for t in tickers] + cash_and_futures())
    for n, ticker in enumerate(tickers):
        yahoo.publish_earnings(ticker, trailing=[(date(2026, 9, 30), -1e6 if n % 3 == 0 else 1e6)])
    path = tmp_path / "riskon.db"
    env = {**os.environ, "PYTHONPATH": str(REPO), "YF_DISABLE_CURL_CFFI": os.environ.get("YF_DISABLE_CURL_CFFI", "")}
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", CRASHING_RUN, str(path), yahoo.url,
                                                   ishares.url, env=env)
    try:
        for _ in range(400):  # bounded: 20 s
            if len(yahoo.income_requests()) >= 10:
                break
            await asyncio.sleep(0.05)
        process.kill()  # SIGKILL: no close, no cleanup
    finally:
        await process.wait()
    asked_before = {path.rsplit("/", 1)[1] for path, q in yahoo.requests if "type" in q}
    assert 10 <= len(asked_before) < 30, "the run must die mid-snapshot"

    store = Store.open(path)
    try:
        read = FragilityStore(store).db.execute("select count(*) from member_net_income").fetchone()[0]
        feed = FragilityFeed("fragility", settings(yahoo, ishares, min_coverage_pct=80), store=store)
        yahoo.requests.clear()
        try:
            await snapshot(feed)
        finally:
            await feed.close()
        asked_after = {path.rsplit("/", 1)[1] for path, q in yahoo.requests if "type" in q}
        finished = feed.table.last_finished("IWM")
    finally:
        store.close()
    assert finished.status == "complete" and finished.covered == 30 and finished.unprofitable == 10
    assert len(asked_after) == 30 - read  # only the members not read before the crash
    assert not asked_after & {t for t in tickers[:read]}  # heaviest-first order is by weight, then ticker


def test_the_holdings_file_keeps_equities_and_sums_a_ticker_listed_twice():
    text = "\n".join([
        'iShares Russell 2000 ETF', 'Fund Holdings as of,"Nov 26, 2026"', '\xa0',
        "Ticker,Name,Sector,Asset Class,Market Value,Weight (%),Notional Value",
        '"AAA","A","Energy","Equity","1,000.00","0.60","1,000.00"',
        '"AAA","A","Energy","Equity","500.00","0.10","500.00"',
        '"BRK.B","B","Financials","Equity","1,000.00","0.30","1,000.00"',
        '"RTYZ6","FUT","Cash and/or Derivatives","Futures","0.00","0.00","80,000.00"',
        '"USD","CASH","Cash and/or Derivatives","Cash","10.00","0.01","10.00"',
        '\xa0', '"The content contained herein is owned or licensed by BlackRock"'])
    holdings = parse_ishares_holdings(text)
    assert holdings.as_of == date(2026, 11, 26)
    assert [(m.ticker, m.yahoo, m.weight_pct) for m in holdings.members] == [
        ("AAA", "AAA", pytest.approx(0.7)), ("BRK.B", "BRK-B", 0.3)]
    assert holdings.left_out == {"Futures": 1, "Cash": 1}


@pytest.mark.parametrize("text, message", [
    ("<html>Service Unavailable</html>", "no 'Ticker,Name"),
    ("Ticker,Name,Asset Class,Weight (%)\n\"A\",\"A\",\"Equity\",\"1\"", "no 'Fund Holdings as of'"),
    ('Fund Holdings as of,"Nov 26, 2026"\nTicker,Name,Asset Class,Weight (%)\n"A","A","Equity","heavy"',
     "IWM file:3: weight 'heavy' of A is not a number"),
    ('Fund Holdings as of,"Nov 26, 2026"\nTicker,Name,Asset Class,Weight (%)\n"USD","C","Cash","1"', "no equity rows"),
])
def test_a_holdings_file_riskon_cannot_read_is_refused_saying_what_and_where(text, message):
    with pytest.raises(HoldingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_ishares_holdings(text, "IWM file")


@pytest.mark.parametrize("quarters, expected", [
    ([(q, -1.0) for q in QUARTERS], (-4.0, date(2026, 9, 30))),
    ([(q, 1.0) for q in QUARTERS[1:]], None),  # three quarters are not a year
    ([(date(2024, 12, 31), 5.0)] + [(q, 1.0) for q in QUARTERS[1:]], None),  # a missing quarter
    ([(date(2025, 9, 30), 100.0)] + [(q, -1.0) for q in QUARTERS], (-4.0, date(2026, 9, 30))),  # newest four
])
def test_four_consecutive_quarters_make_a_trailing_year(quarters, expected):
    assert trailing_from_quarters(quarters) == expected


def test_members_without_data_are_never_counted_either_way():
    figures = tally([MemberIncome("A", 50, -1.0), MemberIncome("B", 30, 2.0), MemberIncome("C", 20, None)])
    assert (figures.covered, figures.unprofitable, figures.no_data) == (2, 1, ("C",))
    assert figures.unprofitable_pct_count == 50.0
    assert figures.unprofitable_pct_weight == pytest.approx(62.5)
    assert figures.coverage_pct_weight == pytest.approx(80.0)


async def test_a_history_csv_is_imported_once_as_bars_with_bad_rows_named(fakes, store, tmp_path, caplog):
    yahoo, ishares = fakes
    history = tmp_path / "iwm_fragility.csv"
    history.write_text("date,unprofitable_pct_count,unprofitable_pct_weight,coverage_pct\n"
                       "2007-06-29,18.5,9.0,95\n2024-06-28,41.2,17.8,97\n2024-07-05,oops,1,1\n"
                       "2024-07-12,140,1,1\n")
    ishares.status = 503  # the live part fails; the import still happens
    feed = FragilityFeed("fragility", settings(yahoo, ishares, funds={"IWM": {"csv": str(history)}}), store=store)
    try:
        result = await feed.fetch([], {}, NOW)
        again = await feed.fetch([], {}, NOW)
    finally:
        await feed.close()
    assert [(b.time.date(), b.close) for b in result.bars["IWM:UNPROFITABLE"]] == [
        (date(2007, 6, 29), 18.5), (date(2024, 6, 28), 41.2)]
    assert [b.close for b in store.load_bars("IWM:UNPROFITABLE_WEIGHT")] == [9.0, 17.8]
    assert "IWM:UNPROFITABLE" not in again.bars
    assert "503" in result.errors["IWM:UNPROFITABLE"]
    assert "iwm_fragility.csv:4: could not convert" in caplog.text or "iwm_fragility.csv:4" in caplog.text
    assert "iwm_fragility.csv:5: unprofitable_pct_count 140 is not a percent" in caplog.text


async def test_a_history_csv_that_cannot_be_read_is_reported_and_the_snapshot_goes_on(fakes, store, tmp_path):
    yahoo, ishares = fakes
    publish_index(yahoo, ishares)
    (tmp_path / "wrong.csv").write_text("date,open,high,low,close\n2026-01-02,1,1,1,1\n")
    feed = FragilityFeed("fragility", settings(yahoo, ishares, min_coverage_pct=80,
                                               funds={"IWM": {"csv": str(tmp_path / "wrong.csv")}}), store=store)
    try:
        first = await feed.fetch([], {}, NOW)
        result = await snapshot(feed) if not first.bars else first
    finally:
        await feed.close()
    assert "wrong.csv not imported" in first.errors["IWM:UNPROFITABLE"]
    assert "needs columns date,unprofitable_pct_count" in first.errors["IWM:UNPROFITABLE"]
    assert feed.table.last_finished("IWM").status == "complete" and result.bars["IWM:UNPROFITABLE"]


async def test_a_second_fund_reuses_the_readings_of_members_it_shares(fakes, store):
    yahoo, ishares = fakes
    publish_index(yahoo, ishares)
    ishares.publish_holdings("IWN", AS_OF, [Holding("LOSE", 60.0), Holding("EARN", 30.0), Holding("VALU", 10.0),
                                            *cash_and_futures()])
    yahoo.publish_earnings("VALU", trailing=[(date(2026, 6, 30), -1e6)])
    feed = FragilityFeed("fragility", settings(yahoo, ishares, min_coverage_pct=80, funds={"IWM": {}, "IWN": {}}),
                         store=store)
    try:
        for _ in range(20):
            await feed.fetch([], {}, NOW)
            if feed.table.last_finished("IWM") and feed.table.last_finished("IWN"):
                break
    finally:
        await feed.close()
    iwn = feed.table.last_finished("IWN")
    assert (iwn.status, iwn.members, iwn.unprofitable) == ("complete", 3, 2)
    assert iwn.unprofitable_pct_weight == pytest.approx(70.0)
    trailing_asks = [path.rsplit("/", 1)[1] for path, q in yahoo.requests if q.get("type", "").startswith("trailing")]
    assert trailing_asks.count("LOSE") == 1 and trailing_asks.count("EARN") == 1 and trailing_asks.count("VALU") == 1
