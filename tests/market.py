"""Where the real market history is: the folder named by RISKON_MARKET_DATA, or a skip that says why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def market_folder() -> Path:
    """Return the real market history folder, or skip the calling test saying why."""
    folder = os.environ.get("RISKON_MARKET_DATA")
    if not folder:
        pytest.skip("RISKON_MARKET_DATA is not set: it names the folder of real market CSVs (.ci/run sets it)")
    path = Path(folder)
    if not path.is_dir():
        pytest.skip(f"RISKON_MARKET_DATA={folder} is not a folder")
    return path
