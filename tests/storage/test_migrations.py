"""Migrations: each one applies whole or not at all, once, in order; the applied ones are listed."""

from __future__ import annotations

import sqlite3

import pytest
from sqlite_utils import Database

from storage import Store
from storage.base import StorageError
from storage.migrations import MIGRATIONS, migrate


def _fresh() -> Database:
    return Database(sqlite3.connect(":memory:", isolation_level=None))  # autocommit, as Store opens it


def _creates_then_fails(db: Database) -> None:
    db.table("half_done").create({"id": int}, pk="id")
    db.table("half_done").insert({"id": 1})
    db.execute("insert into no_such_table values (1)")  # a real SQLite error halfway through


def test_a_failing_migration_leaves_nothing_behind_and_is_not_recorded():
    db = _fresh()
    migrations = [("0001_core", MIGRATIONS[0][1]), ("0002_broken", _creates_then_fails)]
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        migrate(db, migrations)
    assert "half_done" not in db.table_names()
    assert [row["name"] for row in db.table("migrations").rows] == ["0001_core"]  # the one before it stays
    assert not db.conn.in_transaction


def test_every_migration_applies_once_in_order():
    db = _fresh()
    assert migrate(db) == [name for name, _ in MIGRATIONS]
    assert migrate(db) == []
    names = [name for name, _ in MIGRATIONS]
    assert names == sorted(names) and len(set(n[:4] for n in names)) == len(names)  # numbered, no number twice


def test_a_database_from_a_newer_riskon_is_refused_naming_the_file(tmp_path):
    # Was opened as if current: this version's writes would meet tables it does not know the shape of.
    path = tmp_path / "riskon.db"
    Store.open(path).close()
    with sqlite3.connect(path) as db:
        db.execute("insert into migrations values ('0099_from_the_future', '2030-01-01T00:00:00+00:00')")
    db.close()
    with pytest.raises(StorageError) as refused:
        Store.open(path)
    assert str(refused.value) == (
        f"cannot open database {path}: it was written by a newer riskon (migration 0099_from_the_future is "
        "unknown here): run that version, or a backup taken before the upgrade")


def test_rule_states_saved_before_0007_are_read_as_they_are_after_the_upgrade(tmp_path):
    # 0007 records each state's kind; a state saved before has none and must keep serving its rule, whatever its
    # kind (else every rule would start afresh at the upgrade and re-announce old highs).
    path = tmp_path / "riskon.db"
    before = Database(sqlite3.connect(path, isolation_level=None))
    migrate(before, [m for m in MIGRATIONS if m[0] < "0007"])
    before.execute("insert into rule_state (rule_id, symbol, state_json, last_bar_time, updated_at) values "
                   "('rut_ath', '^RUT', '{\"ath\": 2466.5}', '2024-11-25T00:00:00+00:00', '2024-11-26T00:00:00+00:00')")
    before.conn.close()
    store = Store.open(path)
    try:
        state, seen = store.rule_state("rut_ath", "^RUT", "new_ath")
        assert state == {"ath": 2466.5} and seen is not None and seen.isoformat() == "2024-11-25T00:00:00+00:00"
    finally:
        store.close()
