"""`riskon backtest --sweep`: every combination, one corrected table, and clear messages for bad grids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from alerts.sweep import benjamini_hochberg
from bot.backtest import backtest, load_csv_history
from bot.backtest.history import BacktestError
from bot.backtest.sweep import parse_sweep, replay_combination, run_sweep
from bot.cli import main
from bot.config import load_config
from tests.market import market_folder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def market() -> Path:
    return market_folder()


@pytest.fixture(scope="module")
def rut_config(market):
    """^RUT's new-high and flip rules against BTC: a small grid that still has enough signals for a test."""
    config = load_config(REPO / "config.yaml", env={"RISKON_MARKET_DATA": str(market)})
    rules = [r.model_copy(update={"symbols": ["^RUT"]}) for r in config.rules if r.id in ("smallcap_ath",
                                                                                         "smallcap_flip")]
    rules = [r.model_copy(update={"levels": {"^RUT": r.params["levels"]["^RUT"]}}) if "levels" in r.params else r
             for r in rules]
    symbols = [s for s in config.symbols if s.id in ("^RUT", "BTC")]
    feeds = {name: f for name, f in config.feeds.items() if f.kind not in ("composite", "flows")}
    return config.model_copy(update={"rules": rules, "symbols": symbols, "feeds": feeds})


@pytest.fixture(scope="module")
def swept(rut_config, market):
    history = load_csv_history(rut_config, market)
    result = backtest(rut_config, history, horizons=(30, 90))
    grid = parse_sweep(rut_config, ["smallcap_ath.rearm_pct=2,5", "smallcap_flip.break_pct=0.5,1"])
    return rut_config, history, result, run_sweep(rut_config, history, result, grid, workers=2)


def test_every_combination_runs_and_each_distinct_test_is_counted_once(swept):
    _, _, _, sweep = swept
    assert sweep.combinations == 4
    labels = {row.label for row in sweep.rows}
    # Each signal's figures depend on its own rule's parameters only: two values each, not four combinations.
    assert labels == {"smallcap_ath.rearm_pct=2", "smallcap_ath.rearm_pct=5", "smallcap_flip.break_pct=0.5",
                      "smallcap_flip.break_pct=1"}
    assert sweep.tests == sum(row.p_value is not None for row in sweep.rows) > 0
    tested = [r for r in sweep.rows if r.p_value is not None]
    assert [r.p_value for r in tested] == sorted(r.p_value for r in tested)
    assert all(r.q_value >= r.p_value for r in tested)
    # A verdict stands only when it survives the correction; otherwise the row says it did not.
    for row in tested:
        if row.verdict in ("better than chance", "worse than chance"):
            assert row.q_value < 0.05
        elif row.p_value < 0.05:
            assert row.verdict.startswith("no evidence after correction")
    assert "likely luck" in sweep.warning() or "survives the correction" in sweep.warning()


def test_a_sweep_row_is_what_a_backtest_with_those_parameters_finds(swept, market):
    config, history, _, sweep = swept
    changed = config.model_copy(update={"rules": [
        r.model_copy(update={"rearm_pct": 5.0}) if r.id == "smallcap_ath" else r for r in config.rules]})
    direct = backtest(changed, history, horizons=(30, 90))
    study = next(s for s in direct.studies if s.rule_id == "smallcap_ath" and s.follower == "BTC")
    for row in study.rows:
        swept_row = next(r for r in sweep.rows if r.label == "smallcap_ath.rearm_pct=5" and r.follower == "BTC"
                         and r.horizon == row.horizon and r.signal.startswith("^RUT new ath"))
        assert (swept_row.n, swept_row.effect, swept_row.p_value) == (row.test.n, row.test.effect, row.test.p_value)


def test_benjamini_hochberg_matches_the_textbook_example():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    q = benjamini_hochberg(p)
    # sorted 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.02, 0.04, 0.04 (step-up minimum), back in input order
    assert q[:4] == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert np.isnan(q[4])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("smallcap_ath.rearm_pct", "use RULE.PARAM=V1,V2"),
        ("nosuch.rearm_pct=1", "no rule 'nosuch' in the config"),
        ("smallcap_ath.rearm=1,2", "new_ath has no parameter 'rearm'"),
        ("smallcap_ath.rearm_pct=1,abc", "rearm_pct=abc is not valid for smallcap_ath"),
        ("smallcap_ath.rearm_pct=-1", "rearm_pct=-1 is not valid for smallcap_ath"),
    ],
)
def test_a_bad_sweep_gets_one_clear_line(rut_config, spec, message):
    with pytest.raises(BacktestError, match=message.replace("(", r"\(")):
        parse_sweep(rut_config, [spec])


def test_the_command_prints_the_sweep_and_writes_it_to_csv_json_and_html(rut_config, market, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(rut_config.model_dump(mode="json", exclude={"source_path"})))
    code = main(["backtest", "--data", str(market), "--config", str(config), "--horizons", "30",
                 "--sweep", "smallcap_ath.rearm_pct=2,5", "--workers", "1", "--csv", str(tmp_path / "csv"),
                 "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html")])
    out = capsys.readouterr().out
    assert code == 0
    assert "Sweep: 2 combinations of smallcap_ath.rearm_pct=2,5" in out and "Benjamini-Hochberg" in out
    assert (tmp_path / "csv" / "sweep.csv").read_text().startswith("parameters,signal,follower,horizon_days,n,")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["sweep"]["correction"] == "Benjamini-Hochberg" and report["sweep"]["rows"]
    page = (tmp_path / "r.html").read_text()
    assert "Sweep over signal definitions" in page and "smallcap_ath.rearm_pct=5" in page


def test_a_sweep_replays_a_late_starting_history_as_the_backtest_does(market):
    # ETH's file starts after its listing day: the backtest's highs say "highest since", never "all-time".
    config = load_config(REPO / "config.yaml", env={"RISKON_MARKET_DATA": str(market)})
    rule = next(r for r in config.rules if r.id == "crypto_ath")
    config = config.model_copy(update={"rules": [rule.model_copy(update={"symbols": ["ETH"]})],
                                       "symbols": [s for s in config.symbols if s.id == "ETH"]})
    history = load_csv_history(config, market)
    assert "ETH" in history.truncated_since
    direct = backtest(config, history, horizons=(30,))
    swept = replay_combination(config, history, direct.start, [("crypto_ath.rearm_pct", str(rule.params["rearm_pct"]))],
                               ["crypto_ath"])
    assert direct.alerts and not any(a.values["all_time"] for a in direct.alerts)
    assert [(a.bar_time, a.values) for a in swept] == [(a.bar_time, a.values) for a in direct.alerts]
