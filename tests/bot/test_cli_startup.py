"""A light start: --help, --version and check-config load neither pandas nor matplotlib nor the chat libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.market import market_folder, write_small_history

REPO = Path(__file__).resolve().parents[2]
# The live feeds, which a replay or a backtest never builds (it reads CSVs) though the config names them.
LIVE_FEEDS = ("bot.feeds.yahoo", "bot.feeds.exchange", "bot.feeds.flows", "bot.feeds.fragility")
# Heavy libraries a user pays for only when a command uses them (a backtest, a chart, a configured chat).
HEAVY = ("pandas", "numpy", "matplotlib", "telegram", "httpx", "discord", "ccxt", "yfinance", "exchange_calendars")

PROBE = """
import contextlib, io, json, os, sys
from bot.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules}),
                  "ours": sorted(m for m in sys.modules if m.split(".")[0] in ("alerts", "bot", "storage")),
                  "threads": len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None}))
"""


def probe(*argv: str) -> dict:
    """Run the CLI in a fresh interpreter and return its exit code, the top-level modules and riskon's own modules."""
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=REPO, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def loaded_by(*argv: str) -> tuple[int, set[str]]:
    """Run the CLI in a fresh interpreter and return its exit code and the top-level modules it imported."""
    answer = probe(*argv)
    return answer["code"], set(answer["modules"])


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["check-config", "config.yaml"],
                                  ["backtest", "--help"], ["replay", "--help"]])
def test_light_commands_import_no_heavy_library(argv):
    code, modules = loaded_by(*argv)
    assert code == 0
    assert not modules & set(HEAVY), f"riskon {' '.join(argv)} imported {sorted(modules & set(HEAVY))}"


def test_check_config_of_a_telegram_config_validates_without_loading_the_telegram_library(tmp_path):
    config = (REPO / "config.yaml").read_text().replace(
        "  console: {enabled: true}", "  console: {enabled: true}\n  telegram: {token: \"123456:ABC-def\"}")
    (tmp_path / "config.yaml").write_text(config)
    code, modules = loaded_by("check-config", str(tmp_path / "config.yaml"))
    assert code == 0
    assert "telegram" not in modules and "httpx" not in modules


def test_help_and_version_load_no_config_code():
    # The config's models (pydantic, every rule kind) cost about half a second: only a command reading a config pays.
    for argv in (["--help"], ["--version"], ["replay", "--help"], ["backtest", "--help"]):
        answer = probe(*argv)
        assert answer["code"] == 0
        assert not {"pydantic", "yaml", "asyncio"} & set(answer["modules"]), argv
        assert "bot.config" not in answer["ours"], argv


def test_a_config_loads_only_the_rule_feed_and_channel_kinds_it_names():
    answer = probe("check-config", str(REPO / "tests/fixtures/config/good_minimal.yaml"))
    assert answer["code"] == 0
    ours = set(answer["ours"])
    assert {"alerts.rules.new_ath", "bot.feeds.replay"} <= ours
    other_kinds = {f"alerts.rules.{kind}" for kind in ("resistance_flip", "outflow_divergence", "follow_through",
                                                       "level_cross", "pct_move", "drawdown", "unprofitable_share")}
    other_kinds |= {f"bot.feeds.{kind}" for kind in ("yahoo", "exchange", "composite", "flows", "fragility")}
    other_kinds |= {"bot.notifiers.telegram", "bot.notifiers.discord"}
    assert not ours & other_kinds, sorted(ours & other_kinds)


def test_check_config_of_the_default_config_loads_no_feed_code_and_no_logging():
    # Every feed kind's settings are checked, but from their models alone: the feeds' screening, composite maths and
    # iShares parsing, and logging (which the command never writes to), are no part of a config check.
    answer = probe("check-config", str(REPO / "config.yaml"))
    assert answer["code"] == 0
    feed_code = {m for m in answer["ours"] if m.startswith("bot.feeds.")} - {"bot.feeds.base", "bot.feeds.settings"}
    assert not feed_code, sorted(feed_code)
    assert "logging" not in answer["modules"]


def test_a_replay_of_the_default_config_loads_no_chat_or_live_feed_library(tmp_path):
    # The default config names Yahoo, an exchange and the console: a replay reads CSVs and prints, so neither the
    # feeds' libraries nor the chat libraries (nor yarl, which the Discord settings use for their URLs) load.
    data = market_folder()
    answer = probe("replay", "--data", str(data), "--db", str(tmp_path / "replay.db"), "--to", "2016-01-01")
    assert answer["code"] == 0
    loaded = set(answer["modules"]) & {*HEAVY, "yarl", "aiohttp"}
    assert not loaded, sorted(loaded)
    assert not {"bot.notifiers.telegram", "bot.notifiers.discord"} & set(answer["ours"])
    # No chat channel, no chat command: their handlers (and the views they answer with) stay unloaded.
    assert not {"bot.commands.dispatch", "bot.commands.handlers", "bot.commands.status"} & set(answer["ours"])
    # Every feed replays from CSVs: the live feeds' own modules stay unloaded (their settings are still checked).
    assert not set(LIVE_FEEDS) & set(answer["ours"]), sorted(set(LIVE_FEEDS) & set(answer["ours"]))


SQLITE_PLUGINS_PROBE = """
import json, sys
import sqlite_utils.plugins
from storage import Store

Store.open(sys.argv[1], durable=False).close()
Store.memory().close()
print(json.dumps(sqlite_utils.plugins._plugins_loaded))
"""


def test_opening_the_database_looks_for_no_sqlite_utils_plugins(tmp_path):
    # riskon registers no sqlite-utils plugin; looking for them reads every installed package's metadata (~25 ms).
    result = subprocess.run([sys.executable, "-c", SQLITE_PLUGINS_PROBE, str(tmp_path / "riskon.db")], cwd=REPO,
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) is False


def test_a_backtest_with_its_csv_and_json_loads_neither_pandas_nor_matplotlib(tmp_path):
    # The study, co-movement and claims are numpy: pandas (about 0.4 s of import) is no part of a backtest.
    # Charts are drawn only for --html.
    answer = probe("backtest", "--data", str(market_folder()), "--to", "2016-01-01", "--csv", str(tmp_path / "csv"),
                   "--json", str(tmp_path / "result.json"))
    assert answer["code"] == 0
    assert not set(answer["modules"]) & {"pandas", "matplotlib"}, sorted(answer["modules"])
    assert not set(LIVE_FEEDS) & set(answer["ours"]), sorted(set(LIVE_FEEDS) & set(answer["ours"]))
    # Worker processes are a sweep's alone.
    assert "multiprocessing" not in answer["modules"] and "bot.backtest.sweep" not in answer["ours"]
    assert (tmp_path / "csv" / "comovement_rolling.csv").stat().st_size > 0


def test_a_backtest_runs_in_one_thread(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)  # as a user runs it
    # numpy's BLAS starts a thread per core as it loads, which spin waiting for work (about 0.15 s of CPU a
    # backtest on two cores); the backtest's only BLAS calls are dot products of a few thousand returns.
    folder, config = write_small_history(tmp_path)
    answer = probe("backtest", "--data", str(folder), "--config", str(config))
    assert answer["code"] == 0 and "numpy" in answer["modules"]
    if answer["threads"] is None:
        pytest.skip("no /proc/self/task here to count the process's threads")
    assert answer["threads"] == 1


def test_every_registered_rule_kind_is_the_kind_it_is_registered_under():
    from alerts.rules import RULES

    assert all(RULES[kind].kind == kind for kind in RULES)


def test_the_backtest_option_defaults_are_the_studys_own():
    from alerts.study import DEFAULT_HORIZONS
    from bot.cli import build_parser

    args = build_parser().parse_args(["backtest", "--data", "."])
    assert args.horizons == DEFAULT_HORIZONS


def test_every_public_backtest_name_loads():
    import bot.backtest

    for name in bot.backtest.__all__:
        assert getattr(bot.backtest, name) is not None


RUNTIME_PROBE = """
import json, sys
from bot.config import load_config
from bot.runtime import Runtime
from storage import Store

runtime = Runtime(load_config(sys.argv[1]), Store.memory())
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_the_default_runtime_is_built_without_charting_chat_exchange_or_yahoo_libraries():
    # matplotlib comes with the first chart a chat channel sends, the chat libraries with a configured chat, and
    # ccxt (all of its ~110 exchanges: a second and 70 MB) and yfinance (with pandas) with their feeds' first
    # polls, on worker threads: the bot answers chats and polls the other feeds meanwhile.
    result = subprocess.run([sys.executable, "-c", RUNTIME_PROBE, "config.yaml"], cwd=REPO, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    modules = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert not modules & {"matplotlib", "telegram", "discord", "httpx", "ccxt", "yfinance", "pandas"}, sorted(modules)
