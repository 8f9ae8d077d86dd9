"""Market history for tests: the real folder named by RISKON_MARKET_DATA (or a skip that says why), and a tiny
written one."""

from __future__ import annotations

import os
from datetime import date, timedelta
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


# A config over the small history below: ^RUT's new highs, BTC alongside.
SMALL_CONFIG = """
feeds:
  history: {kind: replay, path: "."}
symbols:
  - {id: "^RUT", feed: history, csv: RUT}
  - {id: BTC, feed: history, csv: BTC-USD, asset_class: crypto}
rules:
  - {id: rut_ath, kind: new_ath, symbols: ["^RUT"], min_history_days: 0}
"""


def write_small_history(where: Path, bad_btc_row: bool = False) -> tuple[Path, Path]:
    """Write a tiny data folder (^RUT rising on weekdays, BTC every day; optionally one unreadable BTC row on
    line 7) and SMALL_CONFIG under `where`; return the folder and the config file."""
    folder = where / "data"
    folder.mkdir()
    rut_rows, btc_rows = [], []
    for i in range(120):
        day = date(2024, 1, 1) + timedelta(days=i)
        row = f"{day},{100 + i},{101 + i},{99 + i},{100 + i},10"
        btc_rows.append(row)
        if day.weekday() < 5:
            rut_rows.append(row)
    if bad_btc_row:
        btc_rows.insert(5, "2024-01-05,oops,1,1,1,1")
    (folder / "RUT.csv").write_text("date,open,high,low,close,volume\n" + "\n".join(rut_rows) + "\n")
    (folder / "BTC-USD.csv").write_text("date,open,high,low,close,volume\n" + "\n".join(btc_rows) + "\n")
    config = where / "config.yaml"
    config.write_text(SMALL_CONFIG)
    return folder, config
