"""The backtest's rules in a worker process: the result of the same run here, and no worker left behind.

The worker is a fork, which a process only makes while one thread runs (a test runner's worker has several): each
case runs in a fresh process of its own. By default a worker starts only when the machine has a core idle; the
test runs load the machine, so the cases that need one ask for it (--workers 2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bot.backtest.worker import core_is_spare, use_worker
from tests.market import market_folder, write_small_history

REPO = Path(__file__).resolve().parents[2]

# Runs `riskon backtest` with the given arguments, on one core when asked; says whether the rules ran in this
# process (the engine is loaded only where they run) and whether any child process is left.
COMMAND_PROBE = """
import contextlib, io, json, os, sys
if sys.argv.pop(1) == "one-core":
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from bot.cli import main
errors = io.StringIO()
with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(errors):
    code = main(sys.argv[1:])
try:
    os.waitpid(-1, os.WNOHANG)
    left = True
except ChildProcessError:
    left = False
print(json.dumps({"code": code, "rules_here": "bot.engine" in sys.modules, "children_left": left,
                  "out": out.getvalue(), "err": errors.getvalue()}))
"""

# Starts the rules in a worker, then `kill` it (as the system would when memory runs out) or `leave` it (an error
# before the result is asked for); says what the run gave against the same run here, and what is left running.
DRIVE_PROBE = """
import json, os, signal, sys
from bot.backtest.history import load_csv_history
from bot.backtest.worker import RuleDrive, run_rules
from bot.config import load_config
what, folder, config_path = sys.argv[1:]
config = load_config(config_path)
history = load_csv_history(config, folder)
drive = RuleDrive(config, history, workers=2)
report = {"forked": drive.forked}
if what == "kill":
    os.kill(drive.pid, signal.SIGKILL)
    run = drive.result()[0]
    here = run_rules(config, history, None)[0]
    report["same"] = run.alerts == here.alerts and run.computed == here.computed
    report["alerts"] = len(run.alerts)
else:
    pid = drive.pid
    drive.close()
    try:
        os.kill(pid, 0)
        report["worker_left"] = True
    except ProcessLookupError:
        report["worker_left"] = False
print(json.dumps(report))
"""


def two_cores() -> None:
    """Skip the calling test on a machine with one core: there is no worker to compare with."""
    if not hasattr(os, "fork") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core (or no fork) here: a backtest runs no worker process")


def probe(script: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, capture_output=True, text=True,
                            timeout=180, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def without_clock(text: str) -> str:
    """Return a report without its own run time (the one figure that differs between two runs)."""
    return "\n".join(line for line in text.splitlines() if " leader signal episodes in " not in line)


def test_the_rules_run_in_a_worker_give_the_backtest_of_the_rules_run_here(tmp_path):
    two_cores()
    market = market_folder()
    config = str(REPO / "config.yaml")
    reports = {}
    for name, extra in (("worker", ["--workers", "2"]), ("here", ["--workers", "1"])):
        json_path = tmp_path / f"{name}.json"
        answer = probe(COMMAND_PROBE, "as-is", "backtest", "--data", str(market), "--config", config,
                       "--json", str(json_path), *extra)
        assert answer["code"] == 0, answer["err"]
        assert answer["rules_here"] is (name == "here")
        assert not answer["children_left"]
        written = json.loads(json_path.read_text())
        del written["seconds"]
        reports[name] = (without_clock(answer["out"]).replace(str(json_path), "JSON"), written)
    assert reports["worker"] == reports["here"]
    alerts = reports["here"][1]["alerts"]  # the default rules over the whole shared history
    assert len(alerts) > 500 and {"ALTS", "IWM"} <= {alert["symbol"] for alert in alerts}


def test_on_one_core_the_rules_run_here_with_the_same_result(tmp_path):
    two_cores()  # one of two taken away: on a machine of one there is nothing to compare
    folder, config = write_small_history(tmp_path, bad_btc_row=True)
    command = ["backtest", "--data", str(folder), "--config", str(config), "--alerts", "--workers", "2"]
    answers = {cores: probe(COMMAND_PROBE, cores, *command) for cores in ("one-core", "as-is")}
    assert answers["one-core"]["rules_here"] and not answers["as-is"]["rules_here"]
    assert without_clock(answers["one-core"]["out"]) == without_clock(answers["as-is"]["out"])
    assert "rut_ath" in answers["as-is"]["out"] and "BTC-USD.csv:7: unreadable row" in answers["as-is"]["out"]


@pytest.mark.parametrize(
    ("load", "cores", "spare"),
    [(0.0, 2, True), (1.2, 2, True), (1.9, 2, True), (2.0, 2, False), (3.8, 2, False), (0.0, 1, False),
     (3.6, 4, True), (4.0, 4, False), (float("nan"), 2, False)],
)
def test_a_worker_starts_by_default_only_while_a_core_is_idle(load, cores, spare):
    # The load counts this command's own runs (one busy process: about 1): on two cores, under 2 leaves one idle.
    assert core_is_spare(load, cores) is spare


def test_a_worker_that_dies_is_replaced_by_the_same_run_here(tmp_path):
    two_cores()
    folder, config = write_small_history(tmp_path)
    answer = probe(DRIVE_PROBE, "kill", str(folder), str(config))
    assert answer["forked"] and answer["same"] and answer["alerts"] > 0


def test_a_worker_whose_result_is_never_asked_for_is_stopped(tmp_path):
    two_cores()
    folder, config = write_small_history(tmp_path)
    answer = probe(DRIVE_PROBE, "leave", str(folder), str(config))
    assert answer["forked"] and answer["worker_left"] is False


def test_an_error_after_the_rules_started_leaves_no_worker_behind(tmp_path):
    two_cores()
    folder, config = write_small_history(tmp_path)
    answer = probe(COMMAND_PROBE, "as-is", "backtest", "--data", str(folder), "--config", str(config),
                   "--leaders", "NOPE", "--workers", "2")
    assert answer["code"] == 1 and "unknown symbol 'NOPE'" in answer["err"]
    assert not answer["children_left"]


def test_no_worker_is_forked_while_another_thread_runs():
    # A fork copies only the calling thread: a lock the other one holds would stay held in the worker.
    release = threading.Event()
    other = threading.Thread(target=release.wait, daemon=True)
    other.start()
    try:
        assert not use_worker(2) and not use_worker(None)
    finally:
        release.set()
        other.join(timeout=5)
