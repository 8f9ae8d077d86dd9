"""ETF flows: shares outstanding x NAV from iShares, yfinance's get_shares_full (over HTTP) and CSV imports."""

from __future__ import annotations

import csv
from datetime import date, datetime, timezone

import pytest

from alerts.bars import Bar
from bot.feeds.flows import FlowsFeed, FlowsSettings, Fund
from bot.feeds.fund_shares import SharesCount, clean_shares, implied_flows, read_flows_csv
from bot.feeds.ishares import parse_ishares_fund_csv
from tests.fakes.ishares import FakeIShares
from tests.fakes.yahoo import FakeYahoo, Instrument, read_csv_rows

NOW = datetime(2026, 5, 18, 12, tzinfo=timezone.utc)


def utc_day(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def shares_sample(folder) -> list[tuple[date, float]]:
    with open(folder / "IWM_shares_outstanding_ishares_2026.csv", newline="") as handle:
        return [(date.fromisoformat(r["date"]), float(r["shares_outstanding"])) for r in csv.DictReader(handle)]


@pytest.fixture
def iwm_closes(market_data, store):
    rows = [r for r in read_csv_rows(market_data / "IWM.csv", until=date(2026, 5, 18)) if r.day >= date(2026, 1, 1)]
    store.upsert_bars("IWM", [Bar(utc_day(r.day), r.open, r.high, r.low, r.close, r.volume or 0) for r in rows])
    return {r.day: r.close for r in rows}


@pytest.mark.parametrize(
    "counts, kept_days, reason",
    [
        # Two values for one date: the one continuing the series is kept.
        ([(1, 100.0), (2, 101.0), (2, 80.0), (3, 102.0)], [1, 2, 3], "second value"),
        # A one-day excursion that comes back is a bad value.
        ([(1, 100.0), (2, 120.0), (3, 100.5)], [1, 3], "came back"),
        # A large move that holds is a real creation.
        ([(1, 100.0), (2, 120.0), (3, 120.5)], [1, 2, 3], None),
        # The newest value jumps: held until the next day says whether it holds.
        ([(1, 100.0), (2, 100.5), (3, 130.0)], [1, 2], "held"),
        # A value stuck for weeks is a stale source.
        ([(d, 100.0) for d in range(1, 20)], list(range(1, 12)), "stale"),
        ([(1, 100.0), (2, float("nan")), (3, 100.2)], [1, 3], "not positive"),
    ],
)
def test_shares_counts_are_cleaned_before_flows_are_computed(counts, kept_days, reason):
    kept, dropped = clean_shares([SharesCount(date(2026, 3, d), s) for d, s in counts], 8.0, 10)
    assert [c.day.day for c in kept] == kept_days
    if reason:
        assert any(reason in why for _, why in dropped)
    else:
        assert dropped == []


def test_implied_flow_is_change_in_shares_times_nav():
    counts = [SharesCount(date(2026, 3, 4), 1_000_000), SharesCount(date(2026, 3, 5), 1_200_000, nav=250.0),
              SharesCount(date(2026, 3, 20), 1_100_000)]
    flows = implied_flows(counts, {date(2026, 3, 20): 240.0}, max_gap_days=5)
    assert flows == [(date(2026, 3, 5), 50_000_000.0, 250.0)]  # no flow across a 15-day gap


def test_ishares_header_gives_date_shares_and_nav():
    text = ('iShares Russell 2000 ETF\nFund Holdings as of,"May 15, 2026"\nInception Date,"May 22, 2000"\n'
            'Shares Outstanding,"266,900,000.00"\nNAV,"$221.45"\n\nTicker,Name\n')
    assert parse_ishares_fund_csv(text) == SharesCount(date(2026, 5, 15), 266_900_000.0, 221.45, "ishares")
    with pytest.raises(ValueError, match="Shares Outstanding"):
        parse_ishares_fund_csv("<html>maintenance</html>")
    with pytest.raises(ValueError, match="not in a known format"):  # iShares' "no data today" file
        parse_ishares_fund_csv('iShares Russell 2000 ETF\nFund Holdings as of,"-"\nShares Outstanding,"-"\n')


async def test_yahoo_shares_with_a_stale_duplicate_never_show_a_phantom_flow(market_data, store, iwm_closes):
    sample = shares_sample(market_data)
    fake = FakeYahoo()
    iwm = read_csv_rows(market_data / "IWM.csv", until=date(2026, 5, 15))
    shares = list(sample)
    # get_shares_full's known fault: a second, months-old value for a date already reported.
    stale_day = sample[30][0]
    shares.insert(31, (stale_day, sample[0][1] - 15_000_000))
    fake.add(Instrument("IWM", iwm[-30:], instrument_type="ETF", shares=shares))
    await fake.start()
    feed = FlowsFeed("flows", FlowsSettings(funds={"IWM": Fund(ishares_url="none")}, yahoo_base_url=fake.url), [],
                     store)
    try:
        result = await feed.fetch([], {}, NOW)
        assert result.errors == {}
        flows = dict(store.load_flows("IWM"))
        assert len(flows) >= len(sample) - 8
        # Taken at face value the stale duplicate would read as -$3B on that day and +$3B the next.
        for position in (30, 31, 10):
            day, shares = sample[position]
            expected = (shares - sample[position - 1][1]) * iwm_closes[day]
            assert flows[utc_day(day)] == pytest.approx(expected)
        assert abs(flows[utc_day(stale_day)]) < 1e8
        assert "/ws/fundamentals-timeseries/v1/finance/timeseries/IWM" in [p for p, _ in fake.requests]
    finally:
        await feed.close()
        await fake.stop()


async def test_ishares_daily_file_adds_todays_flow(market_data, store, iwm_closes, tmp_path):
    sample = shares_sample(market_data)
    history = tmp_path / "iwm_shares.csv"
    history.write_text("date,shares_outstanding\n" + "".join(f"{d},{s:.0f}\n" for d, s in sample[:-1]))
    ishares = FakeIShares()
    last_day, last_shares = sample[-1]
    ishares.publish("IWM", last_day, last_shares)
    await ishares.start()
    settings = FlowsSettings(funds={"IWM": Fund(csv=str(history))}, ishares_base_url=ishares.url, use_yahoo=False)
    feed = FlowsFeed("flows", settings, [], store)
    try:
        result = await feed.fetch([], {}, NOW)
        assert result.errors == {} and ishares.requests == 1
        flows = dict(store.load_flows("IWM"))
        expected = (last_shares - sample[-2][1]) * iwm_closes[last_day]
        assert flows[utc_day(last_day)] == pytest.approx(expected)
    finally:
        await feed.close()
        await ishares.stop()


async def test_a_failing_source_is_reported_per_fund_and_never_raises(store):
    ishares = FakeIShares()
    ishares.status = 503
    await ishares.start()
    settings = FlowsSettings(funds={"IWM": Fund(), "IWN": Fund()}, ishares_base_url=ishares.url, use_yahoo=False)
    feed = FlowsFeed("flows", settings, [], store)
    try:
        result = await feed.fetch([], {}, NOW)
        assert set(result.errors) == {"IWM", "IWN"} and "503" in result.errors["IWM"]
    finally:
        await feed.close()
        await ishares.stop()


def test_csv_import_reads_both_layouts_and_names_bad_rows(tmp_path):
    flows_file = tmp_path / "flows.csv"
    flows_file.write_text("date,flow_usd\n2026-03-04,-125000000\n2026-03-05,oops\n2026-03-06,98000000.5\n")
    flows, counts, problems = read_flows_csv(flows_file)
    assert flows == [(date(2026, 3, 4), -125e6), (date(2026, 3, 6), 98000000.5)]
    assert counts == [] and problems and "flows.csv:3" in problems[0]

    shares_file = tmp_path / "shares.csv"
    shares_file.write_text("date,shares_outstanding,nav\n2026-03-04,281800000,240.5\n")
    _, counts, _ = read_flows_csv(shares_file)
    assert counts == [SharesCount(date(2026, 3, 4), 281_800_000.0, 240.5, "csv")]

    wrong = tmp_path / "wrong.csv"
    wrong.write_text("day,amount\n")
    with pytest.raises(ValueError, match="date,flow_usd"):
        read_flows_csv(wrong)


async def test_imported_flows_are_a_series_rules_can_read(store, tmp_path):
    flows_file = tmp_path / "flows.csv"
    flows_file.write_text("date,flow_usd\n2026-03-04,-125000000\n2026-03-05,98000000\n")
    feed = FlowsFeed("flows", FlowsSettings(funds={"IWN": Fund(csv=str(flows_file), ishares_url="none")},
                                            use_yahoo=False), [], store)
    await feed.fetch([], {}, NOW)
    assert store.load_flows("IWN") == [(utc_day(date(2026, 3, 4)), -125e6), (utc_day(date(2026, 3, 5)), 98e6)]
