"""`riskon replay` collects garbage seldom while it runs, hands the caller's pace back and skips the last collection."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from tests.market import market_folder, write_small_history

REPO = Path(__file__).resolve().parents[2]

# Registered first, so it runs last: after whatever the command set up for the interpreter's exit.
PROBE = """
import atexit, gc, sys
from bot.cli import main
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count(), file=sys.stderr))
gc.set_threshold(321, 7, 5)
code = main(sys.argv[1:])
print("thresholds after:", gc.get_threshold(), file=sys.stderr)
sys.exit(code)
"""


@pytest.fixture
def small(tmp_path):
    """A tiny data folder: ^RUT rises on weekdays, BTC every day."""
    return write_small_history(tmp_path)


def test_a_replay_process_hands_back_the_pace_and_ends_without_a_last_collection_of_what_it_kept(small, tmp_path):
    # At exit the interpreter collects once more, walking the replayed history, the config and every module's
    # objects (~0.1 s of a ~2.5 s replay) only to free memory the process is handing back: they are frozen out.
    folder, config = small
    result = subprocess.run([sys.executable, "-c", PROBE, "replay", "--data", str(folder), "--config", str(config),
                             "--db", str(tmp_path / "r.db"), "--speed", "max"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "replay done" in result.stdout
    assert "thresholds after: (321, 7, 5)" in result.stderr
    frozen = int(result.stderr.rsplit("frozen at exit:", 1)[1])
    assert frozen > 10_000, result.stderr  # the interpreter's and the command's objects, not a handful


def test_a_failed_replay_hands_back_the_garbage_collector_as_it_found_it(small, capsys):
    folder, config = small
    before = gc.get_threshold()
    try:
        gc.set_threshold(321, 7, 5)
        assert main(["replay", "--data", str(folder / "missing"), "--config", str(config)]) == 1
        assert gc.get_threshold() == (321, 7, 5)
        assert gc.isenabled() and gc.get_freeze_count() == 0  # nothing left set aside
    finally:
        gc.set_threshold(*before)
    assert "no such folder" in capsys.readouterr().err


# The objects each young collection finds, counted as it starts.
YOUNG_PROBE = """
import gc, sys
from bot.cli import main
found = []
gc.callbacks.append(lambda phase, info: phase == "start" and info["generation"] == 0
                    and found.append(len(gc.get_objects(generation=0))))
code = main(sys.argv[1:])
print("young collections found:", max(found, default=0), file=sys.stderr)
sys.exit(code)
"""


def test_a_replay_never_walks_what_it_built_before_its_first_day(tmp_path):
    # Modules, the config and the history live until exit: built with the collector off and then set aside, no
    # young collection meets them (one walked the whole history, ~20 ms of the default replay). A young
    # collection holds about the batch pace's 20,000 new objects.
    result = subprocess.run([sys.executable, "-c", YOUNG_PROBE, "replay", "--data", str(market_folder()),
                             "--db", str(tmp_path / "r.db"), "--to", "2016-01-01", "--log-level", "ERROR"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    found = int(result.stderr.rsplit("young collections found:", 1)[1])
    assert found < 30_000, result.stderr


COLLECTIONS_PROBE = """
import gc, sys
from bot.cli import build_parser, main
build_parser()  # the parser's own objects: counted before, as every command builds it
collections = []
gc.callbacks.append(lambda phase, info: phase == "stop" and collections.append(info["generation"]))
code = main(sys.argv[1:])
print("collections:", len(collections), "frozen:", gc.get_freeze_count(), "enabled:", gc.isenabled(), file=sys.stderr)
sys.exit(code)
"""


def test_check_config_loads_the_config_without_the_collector_walking_it():
    # pydantic, the models and the rules live to the end of the command: collecting while they are built (some 60
    # young collections, ~12 ms of a 0.3 s check) finds nothing to free. The collector is handed back after.
    result = subprocess.run([sys.executable, "-c", COLLECTIONS_PROBE, "check-config", "config.yaml"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stdout
    counts = result.stderr.rsplit("collections:", 1)[1].split()
    assert int(counts[0]) < 20, result.stderr  # the argument parsing's few
    assert counts[2] == "0" and counts[4] == "True", result.stderr
