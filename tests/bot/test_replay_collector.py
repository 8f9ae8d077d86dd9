"""`riskon replay` collects garbage seldom while it runs, hands the caller's pace back and skips the last collection."""

from __future__ import annotations

import gc
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.cli import main

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
feeds:
  history: {kind: replay, path: "."}
symbols:
  - {id: "^RUT", feed: history, csv: RUT}
  - {id: BTC, feed: history, csv: BTC-USD, asset_class: crypto}
rules:
  - {id: rut_ath, kind: new_ath, symbols: ["^RUT"], min_history_days: 0}
"""

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
    folder = tmp_path / "data"
    folder.mkdir()
    rut_rows, btc_rows = [], []
    for i in range(120):
        day = date(2024, 1, 1) + timedelta(days=i)
        row = f"{day},{100 + i},{101 + i},{99 + i},{100 + i},10"
        btc_rows.append(row)
        if day.weekday() < 5:
            rut_rows.append(row)
    (folder / "RUT.csv").write_text("date,open,high,low,close,volume\n" + "\n".join(rut_rows) + "\n")
    (folder / "BTC-USD.csv").write_text("date,open,high,low,close,volume\n" + "\n".join(btc_rows) + "\n")
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    return folder, config


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
    finally:
        gc.set_threshold(*before)
    assert "no such folder" in capsys.readouterr().err
