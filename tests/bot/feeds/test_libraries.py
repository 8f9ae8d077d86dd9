"""The import thread: a feed's library loads once for every feed that waits for it, whatever happens to one waiter."""

from __future__ import annotations

import asyncio
import importlib
import sys
import uuid

import pytest

from bot.feeds.libraries import load_library


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """Return a maker of uniquely named modules in a folder on sys.path, each sleeping `seconds` while imported."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(seconds: float = 0.0) -> str:
        name = f"riskon_probe_{uuid.uuid4().hex}"
        (tmp_path / f"{name}.py").write_text(f"import time\ntime.sleep({seconds})\nLOADED = True\n")
        importlib.invalidate_caches()
        return name

    yield make
    for name in [name for name in sys.modules if name.startswith("riskon_probe_")]:
        del sys.modules[name]


async def test_a_cancelled_waiter_does_not_cancel_the_import_another_feed_waits_for(modules):
    slow, wanted = modules(0.5), modules()
    ahead = asyncio.ensure_future(load_library(slow))  # holds the import thread: `wanted` waits in the queue
    first = asyncio.ensure_future(load_library(wanted))
    await asyncio.sleep(0.05)
    first.cancel()  # a poll stopped (say, at shutdown) while its library was still queued
    second = await asyncio.wait_for(load_library(wanted), 10)
    assert second.LOADED
    assert (await ahead).LOADED


async def test_a_failed_import_is_tried_again_at_the_next_poll(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"riskon_probe_{uuid.uuid4().hex}"
    with pytest.raises(ModuleNotFoundError):
        await load_library(name)
    (tmp_path / f"{name}.py").write_text("LOADED = True\n")  # installed meanwhile
    importlib.invalidate_caches()
    try:
        assert (await asyncio.wait_for(load_library(name), 10)).LOADED
    finally:
        sys.modules.pop(name, None)
