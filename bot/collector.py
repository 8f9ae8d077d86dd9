"""The garbage collector's pace for a batch command (`riskon replay`, `riskon backtest`)."""

from __future__ import annotations

import atexit
import gc
from contextlib import contextmanager
from typing import Iterator

# Young objects are collected after this many new ones, not the interpreter's 700 (batch tools such as mypy do
# the same): a batch command keeps what it builds to its end, so frequent collections find next to nothing.
BATCH_THRESHOLDS = (20_000, 50, 50)


@contextmanager
def batch_collection() -> Iterator[None]:
    """Collect seldom while a batch command runs, hand the caller's pace (and what it froze) back, and skip the
    collection at exit.

    At exit the interpreter collects once more, walking everything the command kept (history, alerts, ~0.1 s)
    only to free memory the process is handing back anyway: it is frozen out of that collection first.
    Outputs are closed by then; logging flushes in its own exit handler, which runs after this one.
    """
    atexit.unregister(gc.freeze)  # once per process, however many commands a caller (a test) runs
    atexit.register(gc.freeze)
    thresholds = gc.get_threshold()
    gc.set_threshold(*BATCH_THRESHOLDS)
    try:
        yield
    finally:
        # A caller in the same process (a test) keeps its own pace, and what the command froze (built_to_keep) goes
        # back to the collector.
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@contextmanager
def built_to_keep() -> Iterator[None]:
    """Build what a batch command keeps to its end with the collector off, then freeze it out of later collections.

    Modules, the config and a replay's history are hundreds of thousands of objects alive until exit: collected as
    they are built, they would be walked (the history alone ~20 ms in one young collection) only to be found alive.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
