"""Fund flows over history: the shares files read by the live feed's CSV import, with their holes named."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from bot.config import FeedConfig, load_config
from bot.feeds.flow_history import known_spans, load_flow_history
from bot.feeds.fund_shares import ASSETS_OVER_NAV, read_flows_csv
from bot.feeds.history import load_symbol_history
from tests.alerts.drive import day, drive
from tests.market import market_folder

REPO = Path(__file__).resolve().parents[3]
SNAPSHOTS = "IWM_IWN_etf_stats_stockanalysis_2021-2022"


def default_config(folder: Path):
    return load_config(REPO / "config.yaml", env={"RISKON_MARKET_DATA": str(folder)})


def closes_from(folder: Path, config):
    def closes_of(symbol: str):
        return {b.time.date(): b.close for b in load_symbol_history(folder, config.symbol(symbol)).bars}
    return closes_of


def test_a_snapshot_file_is_read_for_one_fund_with_assets_over_nav_where_shares_are_blank():
    """Before 2021-08-07 the scraper had no shares column: total assets / NAV stands in, marked as such."""
    _, counts, problems = read_flows_csv(market_folder() / f"{SNAPSHOTS}.csv", "IWN")
    assert problems == [] and len(counts) == 201
    first = counts[0]
    assert first.day == date(2021, 7, 8) and first.source == ASSETS_OVER_NAV and first.nav is not None
    reported = next(c for c in counts if c.source != ASSETS_OVER_NAV)
    assert reported.day == date(2021, 8, 7) and reported.source.startswith(f"{SNAPSHOTS}.csv:")


def test_runs_of_known_flows_end_at_a_hole():
    days = [date(2022, 2, 17), date(2022, 2, 18), date(2022, 7, 13), date(2022, 7, 14)]
    assert known_spans(days, 4) == [(date(2022, 2, 17), date(2022, 2, 18)), (date(2022, 7, 13), date(2022, 7, 14))]


def test_golden_default_config_flows_and_where_they_are_known():
    """IWN: flows known from 2021-07-09 (the day after the first snapshot) to 2022-02-18, then from 2022-07-13."""
    folder = market_folder()
    config = default_config(folder)
    history = load_flow_history(folder, config.feeds, closes_from(folder, config))
    assert history.spans["IWN"][0] == (date(2021, 7, 9), date(2022, 2, 18))
    assert history.spans["IWM"][-1] == (date(2026, 3, 5), date(2026, 5, 15))  # iShares' 2026 file
    lines = history.coverage(config.rules)
    assert any(line.startswith("IWN: no flow data before 2021-07-09; rule iwn_hollow_rally evaluated on "
                               "2021-07-09 → 2022-02-18, 2022-07-13 → ") for line in lines)


def test_golden_hollow_rallies_the_flow_files_hold():
    """The default rules over the derived flows: IWN's hollow rally of 2021-11-10, IWM's of 2026-04-16.

    By hand: IWN closed 164.07 on 2021-10-13 and 173.90 on 2021-11-10 (+6.0%) while its shares fell from
    99.15M to 97.25M (about $0.3B redeemed at a NAV near 170): over the $300M line. IWM: +9.7% from 246.02
    (2026-03-18) to 269.95 (2026-04-16, a new closing high) while shares fell from 289.4M to 279.9M ($2.3B).
    """
    folder = market_folder()
    config = default_config(folder)
    history = load_flow_history(folder, config.feeds, closes_from(folder, config))
    rules = {c.id: r for r, c in config.build_rules()}
    found = {}
    for rule_id, symbol in (("iwn_hollow_rally", "IWN"), ("iwm_hollow_rally", "IWM")):
        bars = load_symbol_history(folder, config.symbol(symbol)).bars
        flows = history.series(symbol)
        events = drive(rules[rule_id], bars, symbol=symbol, context=lambda b, f=flows: {"flows": f}).events
        found[symbol] = [(day(e), round(e.values["net_flow_usd"] / 1e9, 1)) for e in events]
    assert ("2021-11-10", -0.3) in found["IWN"]
    assert ("2026-04-16", -2.3) in found["IWM"]


def test_a_fund_without_history_files_has_no_flows_and_says_so(tmp_path):
    feeds = {"flows": FeedConfig(kind="flows", funds={"IWM": {"history_csv": ["missing"]}})}
    history = load_flow_history(tmp_path, feeds, lambda symbol: {})
    assert history.flows == {} and history.problems == [f"IWM: no file missing.csv in {tmp_path}"]
