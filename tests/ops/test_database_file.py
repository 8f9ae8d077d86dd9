"""The database file deleted or replaced under a running bot: said at once, and nothing it wrote since is lost."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import pytest

from bot.config import parse_config
from bot.degraded import degraded_reasons
from bot.runtime import Runtime
from storage import Store

CONFIG = ("feeds: {f: {kind: replay, path: /tmp}}\nsymbols: [{id: X, feed: f}]\n"
          "rules: [{id: r, kind: new_ath, symbols: [X]}]\n")


def remove_database(path: Path, suffixes: tuple[str, ...] = ("", "-wal", "-shm")) -> None:
    """Do what `rm riskon.db*` does (or `rm riskon.db`, leaving SQLite's log beside it)."""
    for suffix in suffixes:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@pytest.mark.parametrize("suffixes", [("", "-wal", "-shm"), ("",)], ids=["rm riskon.db*", "rm riskon.db"])
def test_a_deleted_database_file_is_written_back_at_close_with_everything_since(tmp_path, suffixes):
    # Was: the bot went on writing to the deleted file, and a restart began on an empty database: every
    # subscription, alert and rule state gone (its traders silently got nothing more).
    path = tmp_path / "riskon.db"
    store = Store.open(path)
    store.subscribe("telegram", "111")
    remove_database(path, suffixes)
    assert store.file_problem() == (f"database file {path} was deleted while riskon runs: riskon keeps using its "
                                    "open copy and writes it back there when it stops")
    store.subscribe("telegram", "222")  # written after the deletion
    store.close()
    reopened = Store.open(path)
    assert reopened.db.execute("pragma integrity_check").fetchone() == ("ok",)
    assert [s.chat_id for s in reopened.active_subscriptions("telegram")] == ["111", "222"]
    assert reopened.file_problem() is None
    reopened.close()


def test_a_replaced_database_file_is_named_and_left_as_it_is(tmp_path):
    path = tmp_path / "riskon.db"
    store = Store.open(path)
    store.subscribe("telegram", "111")
    other = Store.open(tmp_path / "backup.db")
    other.subscribe("telegram", "999")
    other.close()
    os.replace(tmp_path / "backup.db", path)  # an operator restores a backup over the live file
    assert store.file_problem() == (f"database file {path} was replaced while riskon runs: riskon still writes "
                                    "to the file it opened; restart it to use the new one")
    store.close()
    reopened = Store.open(path)
    assert [s.chat_id for s in reopened.active_subscriptions("telegram")] == ["999"], "the operator's file stays"
    reopened.close()


async def test_the_running_bot_says_so_once_in_its_log_and_in_its_health(tmp_path, caplog):
    path = tmp_path / "riskon.db"
    store = Store.open(path)
    runtime = Runtime(parse_config(CONFIG, env={}), store, console_stream=io.StringIO())
    try:
        await runtime.deliver()
        assert degraded_reasons(runtime, runtime.now()) == [] and "database file" not in caplog.text
        remove_database(path)
        for _ in range(3):
            await runtime.deliver()
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors == [f"database file {path} was deleted while riskon runs: riskon keeps using its open copy "
                          "and writes it back there when it stops"]
        assert errors[0] in degraded_reasons(runtime, runtime.now())
    finally:
        await runtime.close()
        store.close()
    assert path.exists()
