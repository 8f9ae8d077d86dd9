"""A damaged database file: a replay says so in one line naming the file and exits 1, never a traceback or a
summary that reads as success."""

from __future__ import annotations

import os
import sqlite3
import subprocess

import pytest

from bot.cli import main
from tests.market import write_small_history


def damage(path, table: str) -> None:
    """Overwrite the root page of a table (or index) with noise, as a bad sector would."""
    with sqlite3.connect(path) as db:
        db.execute("pragma wal_checkpoint(truncate)")
        page_size, = db.execute("pragma page_size").fetchone()
        root, = db.execute("select rootpage from sqlite_master where name = ?", [table]).fetchone()
    db.close()
    with open(path, "r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\x55" * page_size)


@pytest.mark.parametrize("table", ["bars", "alerts"])
def test_a_replay_on_a_damaged_database_says_so_and_exits_1(tmp_path, capsys, table):
    # bars: a DatabaseError traceback; alerts: a logged traceback, then "replay done: 0 bars ... no new alerts
    # (already recorded in this database)" and exit 0.
    folder, config = write_small_history(tmp_path)
    database = tmp_path / "replay.db"
    args = ["replay", "--data", str(folder), "--config", str(config), "--db", str(database), "--log-level", "ERROR"]
    assert main([*args, "--to", "2024-02-01"]) == 0
    capsys.readouterr()
    damage(database, table)
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 1
    assert f"database {database}: DatabaseError: database disk image is malformed" in err.splitlines()[-1]
    assert err.splitlines()[-1].startswith("riskon: replay stopped")
    assert "Traceback" not in err
    assert "replay done" not in out


def test_a_database_on_a_read_only_volume_says_so(tmp_path, capsys):
    # Was SQLite's bare "unable to open database file": the -wal and -shm files cannot be made beside it.
    if os.geteuid() != 0:
        pytest.skip("a read-only volume needs a tmpfs mount, and mounting one needs root")
    volume = tmp_path / "volume"
    volume.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(volume)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        folder, config = write_small_history(tmp_path)
        database = volume / "replay.db"
        args = ["replay", "--data", str(folder), "--config", str(config), "--db", str(database), "--log-level", "ERROR"]
        assert main([*args, "--to", "2024-02-01"]) == 0
        capsys.readouterr()
        subprocess.run(["mount", "-o", "remount,ro", str(volume)], check=True)
        code = main(args)
        err = capsys.readouterr().err
    finally:
        subprocess.run(["umount", "-l", str(volume)], check=False)
    assert code == 1
    assert err.strip() == (f"riskon: cannot open database {database}: unable to open database file (the file or its "
                           "folder is read-only: riskon writes the database and, beside it, its -wal and -shm files)")
