"""outflow_divergence: price up over the window while the fund's net flow is a large outflow."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from alerts.bars import Bar, utc
from alerts.messages import format_alert
from alerts.rules.outflow_divergence import OutflowDivergenceParams
from tests.alerts.drive import START, bars_from, day, drive, drive_with_restart, load_csv, make_rule, market_data

B = 1e9
WINDOW = dict(window=3, min_return_pct=5.0, min_outflow_usd=1 * B, on_new_high=False, reset_bars=2)


def flows_for(amounts, start=START):
    """One flow per day from START: a list of dollar amounts (None: no data that day)."""
    return tuple((start + timedelta(days=i), a) for i, a in enumerate(amounts) if a is not None)


def run(closes, amounts, extra=None, assets=None):
    """Drive the rule over daily closes with the given daily flows; return the alert bar indexes."""
    rule = make_rule("outflow_divergence", **{**WINDOW, **(extra or {})})
    bars = bars_from(closes)
    flows = flows_for(amounts)
    context = lambda bar: {"flows": flows, "assets_usd": assets}  # noqa: E731
    events = drive(rule, bars, symbol="IWM", context=context).events
    for cut in range(1, len(bars)):
        assert drive_with_restart(rule, bars, cut, symbol="IWM", context=context) == events, f"cut {cut}"
    index = {b.time: i for i, b in enumerate(bars)}
    return [index[e.bar_time] for e in events]


OUT = [-0.4 * B] * 12
CASES = [
    # (case, closes, daily flows, extra params, assets, alert bar indexes)
    ("up 5% in 3 bars while $1.2B left", [100, 101, 102, 105], OUT, {}, None, [3]),
    ("a 5% return exactly counts", [100, 100, 100, 105], OUT, {}, None, [3]),
    ("an outflow of exactly $1B counts", [100, 100, 100, 106], [0, -0.5 * B, -0.25 * B, -0.25 * B], {}, None, [3]),
    ("$999M out is not enough", [100, 100, 100, 106], [0, -0.5 * B, -0.25 * B, -0.249 * B], {}, None, []),
    ("money coming in is no divergence", [100, 101, 102, 106], [0.4 * B] * 4, {}, None, []),
    ("up 4.9% is no rally", [100, 100, 100, 104.9], OUT, {}, None, []),
    ("a new all-time high is a rally even under the return", [100, 100, 100, 101], OUT, {"on_new_high": True},
     None, [3]),
    ("flows that start after the window does are unknown, not zero", [100, 100, 100, 106, 106],
     [None] * 3 + [-2 * B] * 2 + [None] * 7, {"max_flow_lag_days": 0}, None, []),
    ("stale flows: silence", [100, 100, 100, 100, 100, 100, 100, 106], [-2 * B] * 3 + [None] * 9,
     {"max_flow_lag_days": 2}, None, []),
    ("it keeps diverging: one alert", [100, 100, 100, 106, 107, 108, 109], OUT, {}, None, [3]),
    ("a pause shorter than reset_bars does not re-alert", [100, 100, 100, 106, 100, 108, 114], OUT, {}, None, [3]),
    ("gone for reset_bars bars, then back: a second alert", [100, 100, 100, 106, 100, 100, 107, 114], OUT, {},
     None, [3, 7]),
    ("as a share of assets", [100, 100, 100, 106], OUT, {"min_outflow_usd": None, "min_outflow_pct": 1.0},
     100 * B, [3]),
    ("as a share of assets, under the bar", [100, 100, 100, 106], OUT, {"min_outflow_usd": None,
     "min_outflow_pct": 2.0}, 100 * B, []),
    ("a share of assets needs the assets figure", [100, 100, 100, 106], OUT,
     {"min_outflow_usd": None, "min_outflow_pct": 1.0}, None, []),
    ("not enough bars for the window yet", [100, 106], OUT, {}, None, []),
]


@pytest.mark.parametrize("case,closes,amounts,extra,assets,expected", CASES, ids=[c[0] for c in CASES])
def test_divergence(case, closes, amounts, extra, assets, expected):
    """Each case: closes, flows, and the bars where the rule alerts (restart-proof too)."""
    assert run(closes, amounts, extra, assets) == expected


def test_year_to_date_window():
    """YTD measures from the previous year's last close; the first, partial year is never judged."""
    rule = make_rule("outflow_divergence", window="ytd", min_return_pct=5.0, min_outflow_usd=B, on_new_high=False)
    days = [utc(2024, 12, 30), utc(2024, 12, 31), utc(2025, 1, 2), utc(2025, 1, 3), utc(2025, 1, 6)]
    closes = [200, 100, 103, 106, 107]
    bars = [Bar(d, c, c, c, c) for d, c in zip(days, closes)]
    flows = tuple((d, -0.6 * B) for d in days)
    events = drive(rule, bars, symbol="IWM", context=lambda b: {"flows": flows}).events
    assert [(day(e), round(e.values["return_pct"], 1), e.values["net_flow_usd"] / B, e.values["window"])
            for e in events] == [("2025-01-03", 6.0, -1.2, "YTD")]
    text = format_alert(events[0])
    assert text.startswith("🕳️ IWM +6.0% YTD while $1.2B left the fund")


def test_new_year_starts_a_fresh_window():
    """A divergence still on at year end alerts again once the new year's figures diverge."""
    rule = make_rule("outflow_divergence", window="ytd", min_return_pct=1.0, min_outflow_usd=B, on_new_high=False,
                     reset_bars=100)
    days = [utc(2024, 12, 27), utc(2024, 12, 31), utc(2025, 1, 2), utc(2025, 1, 3), utc(2025, 12, 31),
            utc(2026, 1, 2), utc(2026, 1, 5)]
    closes = [100, 100, 102, 103, 103, 104, 106]
    bars = [Bar(d, c, c, c, c) for d, c in zip(days, closes)]
    flows = tuple((d, -0.7 * B) for d in days)
    events = drive(rule, bars, symbol="IWM", context=lambda b: {"flows": flows}).events
    assert [day(e) for e in events] == ["2025-01-03", "2026-01-05"]


@pytest.mark.parametrize(
    "params,message",
    [
        ({"window": 0}, "window must be ytd or a number"),
        ({"window": "mtd"}, "window"),
        ({"min_return_pct": None, "on_new_high": False}, "needs a price condition"),
        ({"min_outflow_usd": None}, "needs a flow condition"),
        ({"min_outflow_usd": -5}, "greater than 0"),
    ],
)
def test_bad_params_are_named(params, message):
    """Config mistakes fail validation with a message naming the problem."""
    with pytest.raises(ValidationError, match=message):
        OutflowDivergenceParams(**params)


def iwm_flows() -> tuple[tuple[datetime, float], ...]:
    """Build IWM's daily net flows from the real shares-outstanding files."""
    return fund_flows("IWM")


def fund_flows(fund: str) -> tuple[tuple[datetime, float], ...]:
    """Build a fund's daily net flows from the real shares-outstanding files: change in shares x that day's close.

    A change across a gap of more than 4 days (the 2022 snapshots are sparse) is months of flows on one
    date, so it is left out: unknown, not a flow.
    """
    folder = market_data()
    closes = {b.time.date().isoformat(): b.close for b in load_csv(fund)}
    series = []
    with (folder / "IWM_IWN_etf_stats_stockanalysis_2021-2022.csv").open() as handle:
        series += [(r["snapshot_date_utc"], float(r["shares_out_millions"]) * 1e6) for r in csv.DictReader(handle)
                   if r["ticker"] == fund and r["shares_out_millions"]]
    if fund == "IWM":  # iShares' 2026 file exists for IWM only
        with (folder / "IWM_shares_outstanding_ishares_2026.csv").open() as handle:
            series += [(r["date"], float(r["shares_outstanding"])) for r in csv.DictReader(handle)]
    flows, previous, price = [], None, None
    for text, shares in series:
        when = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        price = closes.get(text, price)
        if previous is not None and (when - previous[0]).days <= 4 and price:
            flows.append((when, (shares - previous[1]) * price))
        previous = (when, shares)
    return tuple(flows)


def test_golden_iwm_rallied_while_money_left():
    """IWM's rallies of July-August 2022 and April 2026 came with redemptions; 2021's came with inflows.

    Checked by hand from IWM.csv and the two shares-outstanding files (flow = change in shares x close):
    - 2026-04-16: 20 trading days earlier IWM closed 246.02 (2026-03-18); it closed 269.95 (+9.7%, a new
      closing high over 2026-01-22). Shares went from 289.4M (03-18) to 279.9M (04-16): about 9.5M shares
      redeemed, $2.3B. On 04-15 the window still held 03-18's creation of 15.2M shares (+$3.7B): net
      inflow, no alert — 04-16 is the first day that window is hollow.
    - 2022-08-08: from 172.06 (2022-07-11) to 192.82 (+12.1%) while shares fell from 298.2M to 286.5M
      (about $2.1B out). Earlier days of that rally are not judged: the snapshots resume on 2022-07-12,
      after a gap since April, so windows starting before 07-08 lack flow data (unknown, not zero).
    - Aug-Nov 2021: IWM rose while shares grew from 297M to 313M (inflows): no alert. The February 2022
      bounce is not judged: the daily snapshots stop on 2022-02-18, so those windows' flows are stale.
    """
    flows = iwm_flows()
    rule = make_rule("outflow_divergence", window=20, min_return_pct=5.0, min_outflow_usd=1e9)
    events = drive(rule, load_csv("IWM"), symbol="IWM", context=lambda b: {"flows": flows}).events
    found = [(day(e), round(e.values["return_pct"], 1), round(e.values["net_flow_usd"] / 1e9, 1)) for e in events]
    assert found == [("2022-08-08", 12.1, -2.1), ("2026-04-16", 9.7, -2.3)]
    assert format_alert(events[-1]).startswith(
        "🕳️ IWM +9.7% in 20 trading days, at a new all-time high, while $2.3B left the fund"
    )


def test_golden_ytd_stays_silent_without_a_full_year_of_flows():
    """The 2026 shares data starts on 2026-03-04, so a YTD window from 2025-12-31 is never judged: no alert."""
    flows = iwm_flows()
    rule = make_rule("outflow_divergence", window="ytd", min_return_pct=5.0, min_outflow_usd=1e9)
    assert drive(rule, load_csv("IWM"), symbol="IWM", context=lambda b: {"flows": flows}).events == []


def test_flows_known_so_far_give_what_the_whole_series_gives():
    # A backtest shows each bar the flows published by its day: a longer series every few bars, a new object
    # every bar. The rule's index of them grows with them and must answer as an index of the whole would.
    closes = [100, 101, 103, 106, 104, 106, 109, 100, 104, 107, 108, 112, 100, 100, 100, 106]
    amounts = [-0.3 * B, -0.5 * B, -0.6 * B, -0.4 * B, None, -0.6 * B, -0.5 * B, -0.4 * B, None, -0.7 * B,
               -0.4 * B, -0.5 * B, -0.5 * B, -0.5 * B, None, -0.6 * B]
    params = {**WINDOW, "max_flow_lag_days": 1}
    bars = bars_from(closes)
    for hole in (None, -0.5 * B):
        flows = flows_for(amounts[:-2] + [hole, amounts[-1]])
        whole = drive(make_rule("outflow_divergence", **params), bars, symbol="IWM",
                      context=lambda bar, flows=flows: {"flows": flows}).events
        growing = drive(make_rule("outflow_divergence", **params), bars, symbol="IWM",
                        context=lambda bar, flows=flows: {"flows": tuple(f for f in flows if f[0] <= bar.time)}).events
        assert [e.values for e in growing] == [e.values for e in whole]
        # Day 9's missing flow is outside day 12's window; day 15's, inside day 16's, leaves that one unknown.
        expected = ["2024-01-04", "2024-01-12"] + ([] if hole is None else ["2024-01-16"])
        assert [day(e) for e in whole] == expected
        assert [e.values["net_flow_usd"] for e in whole] == [-1.5 * B, -1.6 * B, -1.6 * B][:len(expected)]


def test_a_corrected_flow_is_read_again_not_taken_from_the_earlier_index():
    rule = make_rule("outflow_divergence", **WINDOW)
    bars = bars_from([100, 101, 102, 105])
    inflows, outflows = flows_for([0.4 * B] * 4), flows_for([-0.4 * B] * 4)  # same days, the amounts corrected
    assert drive(rule, bars, symbol="IWM", context=lambda bar: {"flows": inflows}).events == []
    corrected = drive(rule, bars, symbol="IWM", context=lambda bar: {"flows": outflows}).events
    assert [day(e) for e in corrected] == ["2024-01-04"]
    assert corrected[0].values["net_flow_usd"] == -1.2 * B
