"""The feeds' heavy libraries (yfinance with pandas, ccxt, aiohttp, exchange_calendars), loaded off the event loop.

Imports hold the GIL for most of their time: several loading at once on worker threads share one core and all
finish late, and the event loop, which needs the GIL too, answers chats slowly meanwhile. One import thread loads
them one after another, the lightest first when several are wanted at start, so each feed polls as soon as its own
library is in, and the first poll goes out after a third of a second of imports rather than three seconds.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from types import ModuleType
from typing import Iterable

# Lightest first (CPU seconds to import here): aiohttp 0.33; yfinance 0.85 with pandas; exchange_calendars 0.15 once
# pandas is in (0.6 alone); ccxt about 1.0, as it loads every exchange it knows.
LIGHTEST_FIRST = ("aiohttp", "yfinance", "exchange_calendars", "ccxt.async_support", "ccxt.pro")

_importer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="riskon-import")
_imports: dict[str, Future[ModuleType]] = {}
_lock = threading.RLock()


def _loaded(name: str) -> ModuleType | None:
    """Return the module if it is fully imported (not half-way through an import on another thread)."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return None if module is None or getattr(spec, "_initializing", False) else module


def _import(name: str) -> Future[ModuleType]:
    """Return the import of `name` on the import thread, queueing it if it was not asked for yet."""
    with _lock:
        if name not in _imports:
            _imports[name] = future = _importer.submit(importlib.import_module, name)
            future.add_done_callback(lambda done: _forget_failed(name, done))  # inline if done already: RLock
        return _imports[name]


def _forget_failed(name: str, done: Future[ModuleType]) -> None:
    """Forget a failed import, so the next poll tries it again (as it did before there was an import thread)."""
    if done.cancelled() or done.exception() is not None:
        with _lock:
            if _imports.get(name) is done:
                del _imports[name]


def preload(feeds: Iterable[object]) -> None:
    """Queue the libraries the feeds' first polls import, lightest first (a feed lists them in `libraries`)."""
    wanted = {name for feed in feeds for name in getattr(feed, "libraries", ())}
    rank = {name: place for place, name in enumerate(LIGHTEST_FIRST)}
    for name in sorted(wanted, key=lambda name: (rank.get(name, len(rank)), name)):
        _import(name)


async def load_library(name: str) -> ModuleType:
    """Import module `name` on the import thread (at once if it is in already) and return it."""
    module = _loaded(name)
    if module is not None:
        return module
    # Shielded: a waiter cancelled (a poll stopped) must not cancel the queued import other feeds wait for.
    return await asyncio.shield(asyncio.wrap_future(_import(name)))
