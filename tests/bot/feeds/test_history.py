"""CSV histories: several sources stitched (the main one last), screened like a live feed, late starts named."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest

from alerts.rules import RULES
from bot.config import SymbolConfig, load_config
from bot.feeds.history import load_symbol_history
from tests.alerts.drive import day, drive
from tests.market import market_folder

REPO = Path(__file__).resolve().parents[3]
HEADER = "date,open,high,low,close,volume\n"


def write(folder: Path, stem: str, rows: list[tuple[str, float]]) -> None:
    """Write a daily CSV with flat bars at the given closes."""
    lines = [f"{d},{c},{c},{c},{c},1" for d, c in rows]
    (folder / f"{stem}.csv").write_text(HEADER + "\n".join(lines) + "\n")


def days(start: int, count: int, month: int = 1) -> list[str]:
    return [date(2024, month, start + i).isoformat() for i in range(count)]


def test_the_main_source_wins_and_earlier_ones_fill_outside_its_span(tmp_path):
    """Old file 1..10 Jan, main 5..8 Jan: old serves 1-4 and 9-10, main 5-8; spans say so."""
    write(tmp_path, "old", [(d, 100.0 + i) for i, d in enumerate(days(1, 10))])
    write(tmp_path, "main", [(d, 104.5 + i) for i, d in enumerate(days(5, 4))])
    symbol = SymbolConfig(id="X", feed="f", csv=["old", "main"], asset_class="crypto")
    history = load_symbol_history(tmp_path, symbol)
    assert [b.close for b in history.bars] == [100, 101, 102, 103, 104.5, 105.5, 106.5, 107.5, 108, 109]
    assert history.spans == [("old.csv", date(2024, 1, 1), date(2024, 1, 4)),
                             ("main.csv", date(2024, 1, 5), date(2024, 1, 8)),
                             ("old.csv", date(2024, 1, 9), date(2024, 1, 10))]
    assert history.problems == []  # 0.5% apart on the overlap: within the 5% tolerance


def test_sources_that_disagree_on_their_overlap_are_a_named_data_problem(tmp_path):
    """A 20% gap on a common day is reported with both files' lines; the main source's value is kept."""
    write(tmp_path, "old", [(d, 100.0) for d in days(1, 6)])
    write(tmp_path, "main", [(d, 120.0 if d == "2024-01-05" else 100.0) for d in days(4, 4)])
    symbol = SymbolConfig(id="X", feed="f", csv=["old", "main"], asset_class="crypto")
    history = load_symbol_history(tmp_path, symbol, tolerance_pct=5.0)
    (problem,) = history.problems
    assert "old.csv disagrees with the later source by more than 5% on 1 of 3 common days" in problem
    assert "2024-01-05 16.7% (old.csv:6 vs main.csv:3)" in problem
    kept = {b.time.date().isoformat(): b.close for b in history.bars}
    assert kept["2024-01-05"] == 120.0  # the main source's value, not an average (20% is no crypto spike)


def test_a_reverting_spike_is_dropped_and_logged_with_file_and_line(tmp_path, caplog):
    """A 100x print that reverts the next day never reaches the rules; the log names file:line."""
    rows = [(d, 100.0) for d in days(1, 10)]
    rows[5] = (rows[5][0], 10000.0)
    write(tmp_path, "X", rows)
    with caplog.at_level(logging.WARNING, logger="riskon.feeds.quality"):
        history = load_symbol_history(tmp_path, SymbolConfig(id="X", feed="f", asset_class="crypto"))
    assert max(b.close for b in history.bars) == 100.0 and len(history.bars) == 9
    assert "X.csv:7" in caplog.text and "one-bar spike" in caplog.text
    assert any("X.csv:7" in p and "left out" in p for p in history.problems)


def test_a_history_starting_after_the_listing_is_highest_since(tmp_path):
    """listed: before the first bar means the history is truncated: highs are 'since', not all-time."""
    write(tmp_path, "X", [(d, 100.0) for d in days(1, 3)])
    late = load_symbol_history(tmp_path, SymbolConfig(id="X", feed="f", listed=date(2015, 8, 7)))
    assert late.truncated_since is not None and late.truncated_since.date() == date(2024, 1, 1)
    whole = load_symbol_history(tmp_path, SymbolConfig(id="X", feed="f", listed=date(2024, 1, 1)))
    assert whole.truncated_since is None


def test_an_empty_csv_list_is_refused():
    with pytest.raises(ValueError, match="at least one file stem"):
        SymbolConfig(id="X", feed="f", csv=[])


def default_symbol(symbol_id: str) -> SymbolConfig:
    config = load_config(REPO / "config.yaml", env={"RISKON_MARKET_DATA": "."})
    return next(s for s in config.symbols if s.id == symbol_id)


def test_golden_btc_first_all_time_high_after_2013_is_2017_03_02():
    """With CryptoCompare's history before Yahoo's, 2013-12-04's close of 1,237.55 stands until 2017-03-02.

    Yahoo's BTC-USD starts 2014-09-17, under the 2013 high: riskon used to send 15 false "all-time highs"
    from 2015-12-15 to 2017-02-23. By hand: the highest close before 2014-09-17 is 1,237.55 (2013-12-04,
    BTC-USD_cryptocompare.csv); Yahoo's first close above it is 1,251.01 on 2017-03-02.
    """
    folder = market_folder()
    btc = default_symbol("BTC")
    history = load_symbol_history(folder, btc)
    assert history.spans[0][0] == "BTC-USD_cryptocompare.csv" and history.spans[0][1] == date(2010, 7, 17)
    assert ("BTC-USD.csv", date(2014, 9, 17)) in {(name, first) for name, first, _ in history.spans}
    assert history.truncated_since is None  # listed 2010-07-17: the stitched history covers all time
    config = load_config(REPO / "config.yaml", env={"RISKON_MARKET_DATA": str(folder)})
    rule = next(r for r, c in config.build_rules() if c.id == "crypto_ath")
    events = drive(rule, history.bars, symbol="BTC").events
    after_2013 = [day(e) for e in events if day(e) >= "2014-01-01"]
    assert after_2013[0] == "2017-03-02"
    assert events[after_2013 and [day(e) for e in events].index("2017-03-02")].values["previous_ath"] == 1237.55


def test_golden_eth_history_starts_after_its_listing():
    """Yahoo's ETH-USD starts 2017-11-09; ETH traded from 2015-08-07: its highs are 'highest since 2017-11-09'."""
    history = load_symbol_history(market_folder(), default_symbol("ETH"))
    assert history.truncated_since is not None and history.truncated_since.date() == date(2017, 11, 9)
    rule = RULES["new_ath"]("crypto_ath", RULES["new_ath"].Params(rearm_pct=5.0))
    from alerts.rules.base import RuleContext  # noqa: F401 - the engine passes truncated_since through it
    events = drive(rule, history.bars, symbol="ETH",
                   context=lambda bar: {"truncated_since": history.truncated_since}).events
    assert events and all(e.values["since"] == "2017-11-09" and not e.values["all_time"] for e in events)


def test_golden_alts_members_run_on_binance_after_yahoo_ends():
    """XRP's Yahoo file ends 2025-08-13; Binance's XRP/USDT carries it to 2026-03-16, Yahoo kept before."""
    history = load_symbol_history(market_folder(), default_symbol("XRP"))
    assert history.spans[0] == ("XRP-USD.csv", date(2018, 1, 1), date(2025, 8, 13))
    assert history.spans[-1] == ("XRP-USDT_binance.csv", date(2025, 8, 14), date(2026, 3, 16))


def test_golden_a_100x_spike_in_btc_neither_alerts_nor_hides_the_real_highs(tmp_path):
    """A 100x close on 2024-03-01 used to fire "BTC close 2,557,639" and then hide 13 real highs from 2024-03-04."""
    source = market_folder() / "BTC-USD.csv"
    lines = source.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("2024-03-01,"))
    day_, open_, high, low, close, volume = lines[at].split(",")
    lines[at] = ",".join([day_, open_, str(float(close) * 100), low, str(float(close) * 100), volume])
    (tmp_path / "BTC-USD.csv").write_text("\n".join(lines) + "\n")
    symbol = SymbolConfig(id="BTC", feed="f", csv="BTC-USD", asset_class="crypto")
    spiked = load_symbol_history(tmp_path, symbol)
    clean = load_symbol_history(market_folder(), symbol)
    assert [b for b in clean.bars if b.time.date() != date(2024, 3, 1)] == spiked.bars
    assert any(f"BTC-USD.csv:{at + 1}" in p and "one-bar spike" in p for p in spiked.problems)
    rule = RULES["new_ath"]("crypto_ath", RULES["new_ath"].Params(rearm_pct=0.0))
    highs = [day(e) for e in drive(rule, spiked.bars, symbol="BTC").events if day(e) >= "2024-03-01"]
    assert all(e.values["price"] < 200_000 for e in drive(rule, spiked.bars, symbol="BTC").events)
    assert len([d for d in highs if d <= "2024-03-31"]) >= 5 and "2024-03-04" in highs


@pytest.mark.parametrize("row, message", [
    ("2024-01-02,100,nan,99,100,1", "X.csv:3: a price is missing or not a number"),
    ("2024-01-02,100,inf,99,100,1", "X.csv:3: a price is missing or not a number"),
    ("2024-01-02,0,101,0,100,1", "X.csv:3: a price is zero or negative"),
    ("2024-01-02,100,101,-1,100,1", "X.csv:3: a price is zero or negative"),
    ("2024-01-02,100,99.5,99,100.5,1", "X.csv:3: high 99.5 / low 99.0 do not bracket open 100.0 and close 100.5"),
    ("2024-01-02,100,101,100.2,100.5,1", "X.csv:3: high 101.0 / low 100.2 do not bracket open 100.0 and close 100.5"),
    ("2024-01-02,100,101,99,100,-5", "X.csv:3: volume is negative or not a number"),
    ("2024-01-02,100,101,99,100,nan", "X.csv:3: volume is negative or not a number"),
    ("2024-01-02,100,101,99,abc,1", "X.csv:3: unreadable row (could not convert string to float: 'abc')"),
    ("2024-01-02,100,101,99", "X.csv:3: unreadable row (could not convert string to float: '')"),
    ("2024-13-02,100,101,99,100,1", "X.csv:3: unreadable row (month must be in 1..12)"),
    ("2024-01-01,100,101,99,100,1", "X.csv:3: date 2024-01-01 is not after 2024-01-01"),
])
def test_a_bad_row_is_left_out_with_its_file_line_and_what_is_wrong(tmp_path, row, message):
    """Each kind of bad row is named by file:line and reason; the good rows around it are kept."""
    good = ["2024-01-01,100,101,99,100,1", row, "2024-01-03,100,101,99,100.5,"]
    (tmp_path / "X.csv").write_text(HEADER + "\n".join(good) + "\n")
    history = load_symbol_history(tmp_path, SymbolConfig(id="X", feed="f", csv="X", asset_class="crypto"))
    assert history.problems == [f"X: {message}"]
    assert [(b.time.date(), b.close, b.volume) for b in history.bars] == [(date(2024, 1, 1), 100.0, 1.0),
                                                                         (date(2024, 1, 3), 100.5, 0.0)]


def test_reading_history_leaves_the_garbage_collector_as_it_found_it_even_on_a_bad_file(tmp_path):
    """History is built with the collector held; after a good file, a bad one (an error) or with it off, it is as before."""
    import gc

    from bot.feeds.history import ReplayError

    write(tmp_path, "GOOD", [(d, 100.0) for d in days(1, 3)])
    (tmp_path / "BAD.csv").write_text("date,open\n2024-01-01,1\n")
    good = SymbolConfig(id="G", feed="f", csv="GOOD", asset_class="crypto")
    bad = SymbolConfig(id="B", feed="f", csv="BAD", asset_class="crypto")
    assert gc.isenabled()
    assert len(load_symbol_history(tmp_path, good).bars) == 3 and gc.isenabled()
    with pytest.raises(ReplayError, match="missing column"):
        load_symbol_history(tmp_path, bad)
    assert gc.isenabled()
    gc.disable()
    try:
        load_symbol_history(tmp_path, good)
        assert not gc.isenabled()
    finally:
        gc.enable()
