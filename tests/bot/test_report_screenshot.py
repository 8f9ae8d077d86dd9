"""The HTML report opened in headless Chromium (scripts/screenshot_report.py): it renders, and not as a blank page."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)

CONFIG = """
feeds:
  history: {kind: replay, path: "."}
symbols:
  - {id: "^RUT", feed: history, csv: RUT}
  - {id: BTC, feed: history, csv: BTC-USD, asset_class: crypto}
rules:
  - {id: rut_ath, kind: new_ath, symbols: ["^RUT"], min_gap_days: 5}
"""


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (Debian: apt-get install -y chromium)")
def test_the_report_renders_in_headless_chromium(tmp_path):
    from PIL import Image

    folder = tmp_path / "data"
    folder.mkdir()
    rows = [f"2024-{1 + i // 28:02d}-{1 + i % 28:02d},{100 + i % 37},{101 + i % 37},{99 + i % 37},{100 + i % 37},1"
            for i in range(300)]
    header = "date,open,high,low,close,volume\n"
    (folder / "RUT.csv").write_text(header + "\n".join(rows) + "\n")
    (folder / "BTC-USD.csv").write_text(header + "\n".join(rows) + "\n")
    (tmp_path / "config.yaml").write_text(CONFIG)
    page = tmp_path / "report.html"
    assert main(["backtest", "--data", str(folder), "--config", str(tmp_path / "config.yaml"), "--horizons", "7,30",
                 "--html", str(page)]) == 0
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "screenshot_report.py"), str(page),
                           str(tmp_path / "shots"), "--height", "2000"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "shots" / "page.png") as shot:
        assert shot.size == (1300, 2000)
        # The page drew text and tables: many distinct colours, not an empty or error page.
        assert len(shot.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50
    assert (tmp_path / "shots" / "page-01.png").exists()
