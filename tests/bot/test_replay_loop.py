"""The replay loop: a year of days per transaction prints and records what a day per poll does."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def replay(tmp_path: Path, market_data: Path, db: str, *extra: str) -> tuple[str, list[tuple]]:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "replay", "--config", str(REPO / "config.yaml"), "--data", str(market_data),
         "--from", "2020-06-01", "--to", "2021-03-31", "--db", db, *extra],
        cwd=tmp_path, capture_output=True, text=True, timeout=240, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / db) as conn:
        rows = conn.execute("select dedup_key, values_json, text, fired_at, silent from alerts order by id").fetchall()
        rows += conn.execute("select rule_id, symbol, state_json, last_bar_time from rule_state order by 1, 2").fetchall()
    return result.stdout.split("replay done")[0], rows


def test_the_default_replay_in_batches_prints_and_records_what_a_day_per_batch_does(tmp_path, market_data):
    # --speed N paces one day per batch (the loop as a live bot polls); max steps a year of days per batch.
    paced_out, paced = replay(tmp_path, market_data, "paced.db", "--speed", "5000")
    fast_out, fast = replay(tmp_path, market_data, "fast.db")
    assert paced_out.count("Bar: ") > 10  # the 2020-21 rally: highs, flips, follow-throughs, surges
    assert fast_out == paced_out  # the same alerts, grouped into the same messages, in the same order
    assert fast == paced
