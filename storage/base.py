"""The Store's connection: opening pragmas, migrations and transactions that nest, shared by its parts."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from sqlite_utils import Database

from alerts.errors import RiskonError
from alerts.times import utc_text
from storage.migrations import migrate


class StorageError(RiskonError):
    """Signal that the database cannot be opened or used."""


STORE_ERRORS = (sqlite3.Error, StorageError, OSError)  # a locked, full or broken database


def iso(moment: datetime) -> str:
    """Return a moment as the UTC ISO text the tables hold."""
    # Bar times are written again and again (bars, rule state, alerts): each moment is formatted once.
    return utc_text(moment)


def parse_time(text: str) -> datetime:
    """Return the moment a table's ISO text holds."""
    return datetime.fromisoformat(text)


class StoreBase:
    """Hold the migrated connection and its transactions; the Store's parts add named operations on top."""

    def __init__(self, db: Database, busy_timeout: float = 5.0) -> None:
        self.db = db
        self.path: Path | None = None  # the file, when opened from one (storage.thread opens a second connection)
        self.durable = True
        self.busy_timeout = busy_timeout
        self._depth = 0
        # What a transaction read once for all its writes (the alert audience): while this connection holds the
        # write lock no other can change it, and its own changes drop it. Dropped when the transaction ends.
        self._read_in_transaction: dict[str, Any] = {}
        self.db.conn.execute("PRAGMA foreign_keys = ON")
        self.db.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        migrate(self.db)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction; nested uses join the outermost one."""
        if self._depth == 0:
            self.db.conn.execute("BEGIN IMMEDIATE")
            self._read_in_transaction.clear()
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._read_in_transaction.clear()
                self.db.conn.execute("ROLLBACK")
            raise
        self._depth -= 1
        if self._depth == 0:
            self._read_in_transaction.clear()
            try:
                self.db.conn.execute("COMMIT")
            except sqlite3.Error:
                # A full disk can fail the commit itself: end the transaction, or every later BEGIN fails too.
                if self.db.conn.in_transaction:
                    self.db.conn.execute("ROLLBACK")
                raise
