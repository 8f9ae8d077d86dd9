"""One database thread for the live bot's writes, so a locked or full SQLite file never stalls the event loop.

SQLite has a single writer, so one thread with its own connection suits it: every write of the poll and
delivery paths (and the engine's reads inside its transactions) run there, one after another. A write waiting
on another process's lock waits in that thread, and the event loop goes on answering commands, which read
through the loop's own connection: in WAL mode a reader is never blocked by a writer.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from storage.db import Store

T = TypeVar("T")


class DatabaseThread:
    """Run store work on one thread that owns a second connection to the same file (or inline, in memory)."""

    def __init__(self, store: Store, threaded: bool = True) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self.store = store  # the Store that work run here uses
        if threaded and store.path is not None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="riskon-db")
            # Opened in the thread that will use it: an SQLite connection belongs to its thread.
            self.store = self._executor.submit(Store.open, store.path, store.durable, store.busy_timeout).result()
            # A deleted file is written back by the Store that opened it, closed last: not by this second connection.
            self.store.file_id = None

    @property
    def threaded(self) -> bool:
        """Say whether work runs on its own thread (a database file) or inline on the loop (in memory)."""
        return self._executor is not None

    async def run(self, work: Callable[..., T], *args: object) -> T:
        """Run `work(*args)` on the database thread and return its result (or raise its error)."""
        if self._executor is None:
            return work(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(work, *args))

    def submit(self, work: Callable[[], object]) -> None:
        """Queue `work` on the database thread without waiting for it (inline, in memory); it handles its errors."""
        if self._executor is None:
            work()
        else:
            self._executor.submit(work)

    async def close(self) -> None:
        """Finish the queued work, close the thread's connection and end the thread."""
        if self._executor is not None:
            await asyncio.wrap_future(self._executor.submit(self.store.close))
            self._executor.shutdown(wait=True)  # idle by now: the thread ends at once
            self._executor = None
