"""The Store's connection: opening pragmas, migrations and transactions that nest, shared by its parts."""

from __future__ import annotations

import logging
import os
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
log = logging.getLogger(__name__)


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
        self.file_id: tuple[int, int] | None = None  # the opened file's device and inode: is it still at `path`?
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
        """Close the connection; a database whose file was deleted meanwhile is written back to its path first."""
        if self.file_problem() is not None and self.path is not None:
            try:
                # SQLite leaves its write-ahead log at the path: empty it into the file this store opened, or the
                # next open would replay its pages into the file now at the path.
                self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.error("database file %s: the open copy's log could not be emptied: %s", self.path, exc)
            if not self.path.exists():
                self._write_back(self.path)
        self.db.close()

    def file_problem(self) -> str | None:
        """Say whether the database file was deleted or replaced since it was opened (None: it is still there)."""
        if self.path is None or self.file_id is None:
            return None
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            return (f"database file {self.path} was deleted while riskon runs: riskon keeps using its open copy and "
                    "writes it back there when it stops")
        except OSError:
            return None  # unreadable for a moment: the next look says
        if (found.st_dev, found.st_ino) != self.file_id:
            return (f"database file {self.path} was replaced while riskon runs: riskon still writes to the file it "
                    "opened; restart it to use the new one")
        return None

    def _write_back(self, path: Path) -> None:
        """Copy the open database to `path` (its file was deleted): a restart then finds all it holds."""
        fd = None
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)  # owner-only, as Store.open makes it
            os.close(fd)
            target = sqlite3.connect(str(path))
            try:
                self.db.conn.backup(target)
            finally:
                target.close()
        except (OSError, sqlite3.Error) as exc:
            log.error("database file %s was deleted and could not be written back: %s", path, exc)
            return
        log.warning("database file %s was deleted while riskon ran: written back there from the open copy", path)

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
