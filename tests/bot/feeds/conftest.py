"""Fixtures for the live feed tests: the real market CSVs, fake servers on 127.0.0.1, an in-memory store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage import Store


@pytest.fixture
def market_data() -> Path:
    """Return the folder of real market CSVs, or skip when RISKON_MARKET_DATA is unset."""
    folder = os.environ.get("RISKON_MARKET_DATA")
    if not folder:
        pytest.skip("RISKON_MARKET_DATA is not set: the fakes serve bodies built from the real market CSVs")
    path = Path(folder)
    if not (path / "RUT.csv").exists():
        pytest.skip(f"RISKON_MARKET_DATA={folder} has no RUT.csv")
    return path


@pytest.fixture
def store() -> Store:
    """Return a fresh in-memory store."""
    db = Store.memory()
    yield db
    db.close()


@pytest.fixture(autouse=True)
def yfinance_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep yfinance's timezone and cookie caches out of the home folder, and its URL cache per test."""
    import yfinance as yf
    from yfinance.data import YfData

    yf.set_tz_cache_location(str(tmp_path_factory.mktemp("yfcache")))
    # yfinance memoises GETs whose period ended in the past; each test's fake must be asked afresh.
    YfData.cache_get.cache_clear()
