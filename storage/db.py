"""The Store: every read and write riskon makes to its SQLite file, as named operations.

The operations live in focused parts (storage.outbox, storage.subscriptions, storage.market) over one
connection (storage.base); the Store joins them and adds opening, feed health and settings.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Iterable

from sqlite_utils import Database

from alerts.errors import RiskonError
from storage.base import StorageError, iso, parse_time
from storage.market import MarketHistory
from storage.outbox import DELIVERY_STATUSES, AlertOutbox, Delivery
from storage.rows import FeedPolls
from storage.subscriptions import Subscription, Subscriptions

__all__ = ["DELIVERY_STATUSES", "Delivery", "StorageError", "Store", "Subscription"]

REPLAY_CHECKPOINT_PAGES = 10_000  # a non-durable store's log grows to about 40 MB between checkpoints


def _read_only_hint(path: Path) -> str:
    """Say why SQLite's "unable to open database file" may be, when the file or its folder cannot be written."""
    folder = path.parent if str(path.parent) else Path(".")
    if os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK)):
        return ""
    return (" (the file or its folder is read-only: riskon writes the database and, beside it, its -wal and -shm "
            "files)")


class Store(AlertOutbox, Subscriptions, MarketHistory):
    """Open riskon's database (WAL mode, migrated) and expose its named operations."""

    @classmethod
    def open(cls, path: str | os.PathLike[str], durable: bool = True, busy_timeout: float = 5.0) -> Store:
        """Open (creating if needed, readable by its owner only) the database file at `path`.

        durable=False skips the fsync at each commit: still safe against a crash of the process, but the last
        transactions may be lost on power failure — right for replays of history, not for the live bot. It also
        checkpoints the write-ahead log every REPLAY_CHECKPOINT_PAGES instead of every 1,000 pages: each checkpoint
        syncs the log and the file to disk, and a default replay's batches filled 1,000 pages often: 74 fdatasyncs,
        0.25-0.4 s waiting on the disk here (strace), against 14 syncs and 0.14 s with 10,000.
        """
        path = Path(path)
        if path.is_dir():
            raise StorageError(f"cannot open database {path}: it is a folder; name a file in it, e.g. "
                               f"{path / 'riskon.db'}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # Create the file ourselves so it never exists, even briefly, with wider permissions.
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            # Autocommit mode: riskon opens its own transactions (see `transaction`), so that an alert and
            # its outbox rows, or a whole poll's writes, commit together or not at all.
            # No sqlite-utils plugins: riskon registers none, and looking for them scans every installed package.
            db = Database(sqlite3.connect(str(path), isolation_level=None), execute_plugins=False)
            db.enable_wal()
            db.conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            if not durable:
                db.conn.execute(f"PRAGMA wal_autocheckpoint = {REPLAY_CHECKPOINT_PAGES}")
            store = cls(db, busy_timeout)
            opened = os.stat(path)
            store.path, store.durable, store.file_id = path, durable, (opened.st_dev, opened.st_ino)
            return store
        except (OSError, sqlite3.DatabaseError, RiskonError) as exc:
            raise StorageError(f"cannot open database {path}: {exc}{_read_only_hint(path)}") from exc

    @classmethod
    def memory(cls) -> Store:
        """Open a private in-memory database (tests, dry runs)."""
        return cls(Database(sqlite3.connect(":memory:", isolation_level=None), execute_plugins=False))

    # --- feed health and settings --------------------------------------------------------------
    def record_poll(self, feed: str, now: datetime, error: str | None = None) -> None:
        """Record the outcome of one poll of a feed."""
        with self.transaction():
            if error is None:
                self.db.execute(
                    "insert into feed_health (feed, last_ok_at, failures) values (?, ?, 0) on conflict(feed) do "
                    "update set last_ok_at = excluded.last_ok_at, failures = 0",
                    [feed, iso(now)],
                )
            else:
                self.db.execute(
                    "insert into feed_health (feed, last_error_at, last_error, failures) values (?, ?, ?, 1) "
                    "on conflict(feed) do update set last_error_at = excluded.last_error_at, "
                    "last_error = excluded.last_error, failures = failures + 1",
                    [feed, iso(now), error[:500]],
                )

    def record_polls(self, polls: Iterable[tuple[str, datetime, str | None]]) -> None:
        """Record several polls' outcomes, each as (feed, when, error or None), in one transaction."""
        with self.transaction():
            for feed, now, error in polls:
                self.record_poll(feed, now, error)

    def feed_health(self) -> list[FeedPolls]:
        """Return how every feed's polls went, by feed name."""
        rows = self.db.execute(
            "select feed, last_ok_at, last_error_at, last_error, failures from feed_health order by rowid").fetchall()
        return [FeedPolls(feed, parse_time(ok) if ok else None, parse_time(failed) if failed else None, error or "",
                          failures or 0) for feed, ok, failed, error, failures in rows]

    def setting(self, key: str, default: str | None = None) -> str | None:
        """Read a persisted setting (e.g. paused)."""
        row = self.db.execute("select value from settings where key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        """Persist a setting."""
        with self.transaction():
            self.db.execute(
                "insert into settings (key, value) values (?, ?) on conflict(key) do update set value = excluded.value",
                [key, value],
            )
