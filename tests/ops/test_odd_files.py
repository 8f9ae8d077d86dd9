"""History files as traders save them: a spreadsheet's byte-order mark, Yahoo's capitalised header, no header."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from alerts.bars import Bar, bar_problem
from alerts.errors import RiskonError
from bot.feeds.fund_shares import read_flows_csv
from bot.feeds.history import read_daily_csv_lines

ROWS = "2024-01-02,1,2,0.5,1.4,1.5,10\r\n2024-01-03,1.5,2.5,1.2,1.9,2,10\r\n"  # adj close before close


@pytest.mark.parametrize("header", [
    "\ufeffdate,open,high,low,adj close,close,volume",  # "CSV UTF-8" from a spreadsheet: was "missing column date"
    "Date,Open,High,Low,Adj Close,Close,Volume",  # Yahoo's download: was "missing column(s) close, date, ..."
    " date , open , high , low , adj close , close , volume ",
])
def test_a_daily_file_is_read_whatever_the_header_looks_like(tmp_path, header):
    path = tmp_path / "RUT.csv"
    path.write_text(header + "\r\n" + ROWS, encoding="utf-8")
    bars, problems, _ = read_daily_csv_lines(path)
    assert problems == []
    assert [(b.time.date(), b.close) for b in bars] == [(date(2024, 1, 2), 1.5), (date(2024, 1, 3), 2.0)]


def test_a_daily_file_without_the_columns_says_what_its_first_line_holds(tmp_path):
    path = tmp_path / "RUT.csv"
    path.write_text("Fecha;Apertura;Cierre\n02/01/2024;1;2\n", encoding="utf-8")
    with pytest.raises(RiskonError) as refused:
        read_daily_csv_lines(path)
    assert str(refused.value) == (f"{path}: missing column(s) close, date, high, low, open "
                                  "(its first line: fecha;apertura;cierre)")


def test_a_flows_file_with_a_byte_order_mark_is_read(tmp_path):
    # Was "needs columns date,flow_usd ...; found flow_usd, \ufeffdate".
    path = tmp_path / "iwm_flows.csv"
    path.write_text("\ufeffdate,flow_usd\n2024-01-02,-1500000\n", encoding="utf-8")
    flows, counts, problems = read_flows_csv(path)
    assert (flows, counts, problems) == ([(date(2024, 1, 2), -1_500_000.0)], [], [])


@pytest.mark.parametrize("rows, problem", [
    ("date,flow_usd\n2024-01-02,-inf\n", "iwm_flows.csv:2: flow_usd '-inf' is not a finite number"),
    ("date,flow_usd\n2024-01-02,1e400\n", "iwm_flows.csv:2: flow_usd '1e400' is not a finite number"),
    ("date,flow_usd\n2024-01-02,nan\n", "iwm_flows.csv:2: flow_usd 'nan' is not a finite number"),
    ("date,shares_outstanding,nav\n2024-01-02,inf,250\n",
     "iwm_flows.csv:2: shares_outstanding 'inf' is not a positive finite number"),
    ("date,shares_outstanding,nav\n2024-01-02,100000,-3\n", "iwm_flows.csv:2: nav '-3' is not a positive finite number"),
    ("date,shares_outstanding,nav\n2024-01-02,100000,nan\n",
     "iwm_flows.csv:2: nav 'nan' is not a positive finite number"),
    ("snapshot_date_utc,ticker,shares_out_millions,total_assets_musd,nav\n2024-01-02,IWM,inf,,250\n",
     "iwm_flows.csv:2: shares_out_millions 'inf' is not a positive finite number"),
    ("snapshot_date_utc,ticker,shares_out_millions,total_assets_musd,nav\n2024-01-02,IWM,,1e999,250\n",
     "iwm_flows.csv:2: total_assets_musd '1e999' is not a positive finite number"),
])
def test_a_flows_row_that_is_not_a_finite_number_is_a_bad_row_not_a_flow(tmp_path, rows, problem):
    # Were kept: an inf flow summed into a window reads as "$inf redeemed", an outflow alert from nothing.
    path = tmp_path / "iwm_flows.csv"
    path.write_text(rows, encoding="utf-8")
    flows, counts, problems = read_flows_csv(path, fund="IWM")
    assert (flows, counts, problems) == ([], [], [problem])


@pytest.mark.parametrize("first_row, problem", [
    ("2024-01-01,1e308,1e308,1e308,1e308,10", "RUT.csv:2: a price of 1e+308 is beyond any market's (over 1e+15)"),
    ("2024-01-01,100,2.5e15,99,100,10", "RUT.csv:2: a price of 2.5e+15 is beyond any market's (over 1e+15)"),
    ("2024-01-01,100,101,99,100,inf", "RUT.csv:2: volume is negative or not a number"),
])
def test_a_garbage_first_bar_is_a_bad_row_not_the_all_time_high(tmp_path, first_row, problem):
    # The spike check compares a bar with the one before: the first bar has none, so 1e308 was kept, and no
    # later close could ever make a new all-time high.
    path = tmp_path / "RUT.csv"
    path.write_text("date,open,high,low,close,volume\n" + first_row + "\n2024-01-02,100,101,99,100,10\n")
    bars, problems, lines = read_daily_csv_lines(path)
    assert problems == [problem]
    assert [(b.time.date(), b.close) for b in bars] == [(date(2024, 1, 2), 100.0)] and list(lines.values()) == [3]


def test_every_real_daily_file_is_within_the_bound(market_data):
    for path in sorted(market_data.glob("*.csv")):
        if "date,open,high,low,close" not in path.read_text().splitlines()[0]:
            continue  # the shares-outstanding and ETF statistics samples
        bars, problems, _ = read_daily_csv_lines(path)
        assert bars and not [p for p in problems if "beyond" in p or "volume" in p], (path.name, problems[:3])


def test_a_live_bar_beyond_any_market_is_refused_too():
    huge = Bar(datetime(2026, 1, 2, tzinfo=timezone.utc), 100.0, 1e300, 99.0, 100.0, 1.0)
    assert bar_problem(huge) == "a price of 1e+300 is beyond any market's (over 1e+15)"
    real = Bar(datetime(2026, 1, 2, tzinfo=timezone.utc), 2.6e9, 2.7e9, 2.5e9, 2.6e9, 3e14)  # BTC in dong, SHIB volume
    assert bar_problem(real) is None


def test_one_row_dated_far_ahead_by_a_typo_loses_that_row_not_every_row_after_it(tmp_path):
    # Was every later row refused as "date 2024-04-11 is not after 2204-04-10" (199 of 300 rows here), the history
    # ending in 2204, and the messages blaming the good rows.
    rows = ["date,open,high,low,close,volume"]
    for i in range(300):
        day = date(2204, 4, 10) if i == 100 else date(2024, 1, 1) + timedelta(days=i)  # 2204 typed for 2024
        rows.append(f"{day},{100 + i},{101 + i},{99 + i},{100 + i},10")
    path = tmp_path / "RUT.csv"
    path.write_text("\n".join(rows) + "\n")
    bars, problems, lines = read_daily_csv_lines(path)
    assert problems == ["RUT.csv:102: date 2204-04-10 is out of order: the rows around it are 2024-04-09 and "
                        "2024-04-11"]
    assert len(bars) == 299 and bars[-1].time.date() == date(2024, 10, 26) and 102 not in lines.values()


@pytest.mark.parametrize("rows, problem", [
    (["2204-01-01", "2024-01-02", "2024-01-03"],
     "RUT.csv:2: date 2204-01-01 is out of order: the rows after it start at 2024-01-02"),
    (["2024-01-01", "2024-01-03", "2024-01-02", "2024-01-04"], "RUT.csv:4: date 2024-01-02 is not after 2024-01-03"),
    (["2024-01-03", "2024-01-02", "2024-01-01"], "RUT.csv:3: date 2024-01-02 is not after 2024-01-03"),
])
def test_a_first_row_far_ahead_is_the_odd_one_and_rows_merely_out_of_order_are_told_as_before(tmp_path, rows,
                                                                                                problem):
    path = tmp_path / "RUT.csv"
    path.write_text("date,open,high,low,close,volume\n" + "".join(f"{day},1,2,0.5,1.5,1\n" for day in rows))
    _, problems, _ = read_daily_csv_lines(path)
    assert problems[0] == problem
