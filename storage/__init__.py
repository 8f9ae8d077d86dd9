"""SQLite storage for riskon, a thin layer of named operations over sqlite-utils."""

import sys


def _import_sqlite_utils_without_pandas() -> None:
    """Import sqlite-utils without pandas and numpy, which it loads only to map their types to column types.

    That costs about half a second and 40 MB at every start (`riskon replay`, `run`, chat commands); riskon
    creates its tables from Python types and never stores a pandas or numpy value. Whoever needs pandas later
    (the backtest) imports it as usual: only this one import goes without.
    """
    if "sqlite_utils" in sys.modules:
        return
    absent = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in absent:
        sys.modules[name] = None  # type: ignore[assignment]  # an import of it raises ImportError: skipped
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for name in absent:
            if sys.modules.get(name) is None:
                del sys.modules[name]


_import_sqlite_utils_without_pandas()

from storage.db import Delivery, Store, Subscription  # noqa: E402
from storage.rows import FeedPolls, Mute, RecordedAlert  # noqa: E402

__all__ = ["Delivery", "FeedPolls", "Mute", "RecordedAlert", "Store", "Subscription"]
