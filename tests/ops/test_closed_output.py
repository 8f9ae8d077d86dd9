"""Output nobody reads any more: `riskon replay | head` ends the replay without a traceback, and loses nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.market import write_small_history
from tests.ops.bot_process import BotProcess

REPO = Path(__file__).resolve().parents[2]


def replay(folder: Path, config: Path, db: Path, stdout: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", "replay", "--data", str(folder), "--config", str(config),
                           "--db", str(db)], cwd=db.parent, stdout=stdout, stderr=subprocess.PIPE, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})


def statuses(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as connection:
        counts = dict(connection.execute("select status, count(*) from deliveries group by status").fetchall())
    connection.close()
    return counts


def test_a_replay_into_a_closed_pipe_stops_cleanly_and_the_next_replay_prints_what_was_not(tmp_path):
    # Was: every alert of the replay written into the closed pipe, each "delivery failed for good" (a WARNING line
    # per alert), the whole history replayed for nobody, and exit 0 with the alerts lost for good.
    folder, config = write_small_history(tmp_path)
    db = tmp_path / "r.db"
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before riskon writes a byte, as with `riskon replay | head -0`
    try:
        first = replay(folder, config, db, write_end)
    finally:
        os.close(write_end)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr and "failed for good" not in first.stderr, first.stderr
    assert "stdout was closed: replay stopped" in first.stderr, first.stderr
    recorded = statuses(db)
    assert recorded.get("failed", 0) == 0 and recorded.get("sent", 0) == 0, recorded
    waiting = recorded.get("pending", 0) + recorded.get("retrying", 0)
    assert waiting > 10, recorded

    second = replay(folder, config, db, subprocess.PIPE)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("new all-time high") == waiting, second.stdout
    assert statuses(db) == {"sent": waiting}


async def test_a_replay_stopped_by_ctrl_c_says_where_it_stopped_and_the_next_one_goes_on(tmp_path):
    # Was "replay done: 675 bars ..., 3 new alert(s)" and exit 0, as if the data had ended there.
    folder, config = write_small_history(tmp_path)
    args = ["replay", "--data", str(folder), "--config", str(config), "--db", str(tmp_path / "r.db"), "--speed", "20"]
    first = await BotProcess(args, tmp_path, env={"PYTHONPATH": str(REPO)}).start()
    try:
        await first.wait_for_line("new all-time high", 60)
        code, _ = await first.stop(signal.SIGINT)
    finally:
        await first.kill()
    assert code == 130, "\n".join(first.lines[-20:])
    stopped = [line for line in first.stdout if line.startswith("replay stopped after 2024-")]
    assert stopped and "before the end of the data" in stopped[0], first.stdout[-5:]
    assert "replay done" not in "\n".join(first.stdout)
    second = replay(folder, config, tmp_path / "r.db", subprocess.PIPE)
    assert second.returncode == 0 and "replay done" in second.stdout, second.stderr
    assert statuses(tmp_path / "r.db") == {"sent": 85}, "every alert printed once over the two replays"
