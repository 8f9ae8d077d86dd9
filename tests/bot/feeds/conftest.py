"""Fixtures for the live feed tests (market_data and store come from tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def yfinance_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep yfinance's timezone and cookie caches out of the home folder, and its URL cache per test."""
    import yfinance as yf
    from yfinance.data import YfData

    yf.set_tz_cache_location(str(tmp_path_factory.mktemp("yfcache")))
    # yfinance memoises GETs whose period ended in the past; each test's fake must be asked afresh.
    YfData.cache_get.cache_clear()
