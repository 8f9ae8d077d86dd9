"""`riskon backtest`: one truth with the live path, and the command as a user runs it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import yaml

from alerts.events import AlertEvent
from bot.backtest import BacktestError, backtest, load_csv_history, replay_rules_async
from bot.cli import main, replay_config
from bot.config import load_config, parse_config
from bot.feeds import FEEDS
from bot.feeds.replay import ReplayFeed, ReplaySettings
from bot.runtime import Runtime
from storage import Store
from tests.market import market_folder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def market() -> Path:
    return market_folder()


@pytest.fixture(scope="module")
def default_config(market):
    return load_config(REPO / "config.yaml", env={"RISKON_MARKET_DATA": str(market)})


@pytest.fixture(scope="module")
def ath_config(default_config):
    """The default symbols with just the two new-high rules: the fast case for command-line tests."""
    rules = [r.model_copy(update={"symbols": [s for s in r.symbols if s in ("^RUT", "IWM", "IWN", "BTC", "ETH")]})
             for r in default_config.rules if r.id in ("smallcap_ath", "crypto_ath")]
    symbols = [s for s in default_config.symbols if s.id in ("^RUT", "IWM", "IWN", "BTC", "ETH")]
    return default_config.model_copy(update={"rules": rules, "symbols": symbols})


@pytest.fixture(scope="module")
def default_result(default_config, market):
    """The backtest of the default config over the real history (computed once for this module)."""
    return backtest(default_config, load_csv_history(default_config, market))


def as_recorded(event: AlertEvent) -> tuple:
    """Return an event as the store keeps it (values through JSON), for exact comparison."""
    return (event.rule_id, event.kind, event.symbol, event.bar_time.isoformat(),
            json.loads(json.dumps(dict(event.values), default=str)))


async def live_path_alerts(config, market: Path, start: date | None = None) -> list[tuple]:
    """Replay the history through the live runtime one market day per poll, as `riskon replay` does."""
    config = replay_config(config, str(market), start, None)
    store = Store.memory()
    feed = ReplayFeed("replay", ReplaySettings(**config.feeds["replay"].settings), config.symbols)
    feed.load()
    feeds = {"replay": feed}
    for name, settings in config.feeds.items():  # computed feeds (composites) run beside the replay, as live
        if name != "replay":
            kind = FEEDS[settings.kind]
            feeds[name] = kind.build(name, kind.Settings(**settings.settings),
                                     [s for s in config.symbols if s.feed == name], store)
    runtime = Runtime(config, store, clock=feed.clock, live_since=feed.live_since(), feeds=feeds)
    polls = 0
    while not feed.exhausted:
        for name in runtime.feeds:  # the replay feed first, then any computed feed (composites)
            await runtime.poll(name)
        polls += 1
        assert polls <= feed.day_count + 1, "the replay did not finish"
    rows = store.recent_alerts(1_000_000, include_silent=False)[::-1]
    store.close()
    return [(r["rule_id"], r["kind"], r["symbol"], r["bar_time"], r["values"]) for r in rows]


async def test_one_truth_backtest_gives_exactly_the_alerts_of_the_live_bar_by_bar_path(
    default_config, default_result, market
):
    backtested = [as_recorded(e) for e in default_result.alerts]
    live = await live_path_alerts(default_config, market)
    assert len(backtested) > 100  # the real history has many new highs: this compares something
    assert {a[2] for a in backtested} >= {"^RUT", "IWM", "IWN", "BTC", "ETH"}
    assert backtested == live  # same alerts, same values, same order


async def test_one_truth_holds_with_a_warm_up_before_from(ath_config, market):
    start = date(2021, 1, 1)
    history = load_csv_history(ath_config, market)
    backtested = [as_recorded(e) for e in (await replay_rules_async(ath_config, history.bars, start)).alerts]
    live = await live_path_alerts(ath_config, market, start)
    assert backtested and all(a[3] >= "2021-01-01" for a in backtested)
    assert backtested == live


def test_the_study_uses_the_alerts_of_the_leaders_and_says_what_is_not_yet_known(default_result):
    result = default_result
    # ^RUJ has no history file; ALTS's members are not followers in their own right.
    assert result.leaders == ("^RUT", "IWM", "IWN") and result.followers == ("BTC", "ETH", "ALTS")
    assert any("^RUJ: no file RUJ.csv" in p for p in result.problems)
    alts = next(s for s in result.spans if s.symbol == "ALTS")
    assert (alts.first, alts.last) == (date(2020, 4, 10), date(2025, 8, 13))  # computed from its members
    rut_btc = next(s for s in result.studies if s.leader == "^RUT" and s.follower == "BTC")
    assert date(2020, 11, 13) in [s.day for s in rut_btc.signals]
    assert rut_btc.outcome(date(2020, 11, 13), 30).return_pct == pytest.approx(17.31, abs=0.01)
    # Data ends 2026-09-25: a signal of August 2026 cannot have a 90-day return yet.
    pending = [o for o in rut_btc.outcomes if o.status == "not_yet"]
    assert pending and all(o.needs_data_to > date(2026, 9, 25) for o in pending)
    assert all(o.return_pct is None for o in pending)
    # Signals before BTC existed are counted apart, not studied.
    assert rut_btc.skipped == len([s for s in rut_btc.signals if s.day < date(2014, 9, 17)])


def test_backtest_command_prints_the_tables_and_writes_csv_json_and_html(ath_config, market, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(ath_config.model_dump(mode="json", exclude={"source_path"})))
    code = main(["backtest", "--data", str(market), "--config", str(config),
                 "--csv", str(tmp_path / "csv"), "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html")])
    out = capsys.readouterr().out
    assert code == 0
    assert "Alerts the configured rules would have fired" in out
    assert "Event study" in out and "Co-movement" in out
    assert "not yet: needs data to 2027-01-31" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["followers"] == ["BTC", "ETH"]
    assert len(report["alerts"]) > 100
    assert {"date", "rule", "symbol", "values", "text"} <= set(report["alerts"][0])
    study = next(s for s in report["studies"] if s["leader"] == "^RUT" and s["follower"] == "BTC")
    assert [h["horizon"] for h in study["horizons"]] == [7, 30, 90, 180]
    csvs = sorted(p.name for p in (tmp_path / "csv").iterdir())
    assert csvs == ["alerts.csv", "comovement_by_year.csv", "comovement_rolling.csv", "outcomes.csv", "signals.csv",
                    "study.csv"]
    assert (tmp_path / "csv" / "outcomes.csv").read_text().splitlines()[0].startswith("signal_day,leader,rule")
    page = (tmp_path / "r.html").read_text()
    assert page.count("data:image/png;base64,") >= 6  # signals, paths and co-movement per leader
    assert "src=\"http" not in page and "<script" not in page  # self-contained, nothing fetched


# --- bad input: a clear message, never a traceback ----------------------------------------------------

CONFIG = """
feeds:
  history: {kind: replay, path: "."}
symbols:
  - {id: "^RUT", feed: history, csv: RUT}
  - {id: BTC, feed: history, csv: BTC-USD, asset_class: crypto}
rules:
  - {id: rut_ath, kind: new_ath, symbols: ["^RUT"]}
"""


@pytest.fixture
def small(tmp_path):
    """A tiny data folder: ^RUT rises on weekdays, BTC every day, one bad BTC row."""
    from datetime import timedelta

    folder = tmp_path / "data"
    folder.mkdir()
    day, rut_rows, btc_rows = date(2024, 1, 1), [], []
    for i in range(120):
        current = day + timedelta(days=i)
        price = 100 + i
        btc_rows.append(f"{current},{price},{price + 1},{price - 1},{price},10")
        if current.weekday() < 5:
            rut_rows.append(f"{current},{price},{price + 1},{price - 1},{price},10")
    btc_rows.insert(5, "2024-01-05,oops,1,1,1,1")
    (folder / "RUT.csv").write_text("date,open,high,low,close,volume\n" + "\n".join(rut_rows) + "\n")
    (folder / "BTC-USD.csv").write_text("date,open,high,low,close,volume\n" + "\n".join(btc_rows) + "\n")
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    return folder, config


def test_a_small_history_runs_and_reports_the_bad_row(small, capsys):
    folder, config = small
    assert main(["backtest", "--data", str(folder), "--config", str(config), "--horizons", "7,30"]) == 0
    out = capsys.readouterr().out
    assert "BTC-USD.csv:7: unreadable row" in out
    assert "rut_ath" in out and "+30d" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "/no/such/folder"], "--data /no/such/folder: no such folder"),
        (["--from", "2024-03-01", "--to", "2024-02-01"], "--from 2024-03-01 is after --to 2024-02-01"),
        (["--followers", "DOGE"], "unknown symbol 'DOGE'"),
        (["--episode-gap", "-1"], "--episode-gap must be 0 or more days"),
        (["--to", "2023-01-01"], "no history for any configured symbol"),
    ],
)
def test_bad_options_get_one_clear_line_and_exit_1(small, capsys, extra, message):
    folder, config = small
    args = ["backtest", "--config", str(config)] + (extra if extra[0] == "--data" else ["--data", str(folder), *extra])
    assert main(args) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("extra", [["--horizons", "7,x"], ["--horizons", "0"], ["--from", "2024-13-01"], []])
def test_unusable_arguments_are_usage_errors(small, capsys, extra):
    folder, config = small
    args = ["backtest", "--config", str(config)] + ([] if extra == [] else ["--data", str(folder)]) + extra
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_config_without_enabled_rules_is_refused(tmp_path, small):
    folder, _ = small
    config = parse_config(CONFIG.replace("rules:\n  - {id: rut_ath", "rules:\n  - {enabled: false, id: rut_ath"))
    with pytest.raises(BacktestError, match="no enabled rules"):
        backtest(config, load_csv_history(config, folder))


def test_live_fetches_through_the_configured_feeds_caches_and_agrees_with_data(small, tmp_path, capsys):
    folder, config = small
    config.write_text(CONFIG.replace('path: "."', f'path: "{folder}"'))
    cache = tmp_path / "cache.db"
    assert main(["backtest", "--live", "--cache", str(cache), "--config", str(config),
                 "--json", str(tmp_path / "live.json")]) == 0
    assert main(["backtest", "--data", str(folder), "--config", str(config), "--json", str(tmp_path / "data.json")]) == 0
    live = json.loads((tmp_path / "live.json").read_text())
    data = json.loads((tmp_path / "data.json").read_text())
    assert live["alerts"] and live["alerts"] == data["alerts"]
    assert cache.exists()
    # A second run reads the cache and asks the feed only for what is new.
    assert main(["backtest", "--live", "--cache", str(cache), "--config", str(config),
                 "--json", str(tmp_path / "again.json")]) == 0
    assert json.loads((tmp_path / "again.json").read_text())["alerts"] == live["alerts"]


def test_the_html_report_escapes_what_came_from_the_input(small, tmp_path):
    folder, config = small
    rows = (folder / "BTC-USD.csv").read_text().replace("2024-01-05,oops", "2024-01-05,<script>alert(1)</script>")
    (folder / "BTC-USD.csv").write_text(rows)
    assert main(["backtest", "--data", str(folder), "--config", str(config), "--html", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "unreadable row" in page
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
