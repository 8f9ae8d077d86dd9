"""Open an HTML report in headless Chromium and save screenshots of it, to look at before calling a report done.

    python scripts/screenshot_report.py report.html shots/ [--width 1300] [--height 9000] [--slice 1500]

Writes shots/page.png (the whole window) and shots/page-01.png, -02.png, ... (slices of --slice pixels, easier to
read one at a time). Needs Chromium: Debian `apt-get install -y chromium` (or set CHROMIUM to its path). The page
is opened from a file:// URL with networking off, so a report that needs the network shows up broken.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--hide-scrollbars"]


def find_chromium() -> str:
    """Return the Chromium executable: $CHROMIUM, else chromium or chromium-browser on PATH."""
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate) or candidate
    raise SystemExit("screenshot_report: no Chromium found; apt-get install -y chromium, or set CHROMIUM")


def screenshot(html: Path, out: Path, width: int, height: int, timeout: float = 120.0) -> Path:
    """Render the page at width x height and save it as a PNG."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="riskon-chromium-") as profile:
        command = [find_chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                   f"--screenshot={out}", html.resolve().as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if not out.exists():
        raise SystemExit(f"screenshot_report: Chromium wrote no screenshot (exit {done.returncode}): "
                         f"{done.stderr.strip()[-500:]}")
    return out


def slices(page: Path, height: int) -> list[Path]:
    """Cut the screenshot into slices of `height` pixels; return their paths."""
    from PIL import Image

    written = []
    with Image.open(page) as image:
        for number, top in enumerate(range(0, image.height, height), start=1):
            part = image.crop((0, top, image.width, min(top + height, image.height)))
            if part.getextrema() == ((255, 255), (255, 255), (255, 255)) or \
                    all(low == high == 255 for low, high in part.convert("RGB").getextrema()):
                break  # the page ended: the rest is blank window
            path = page.with_name(f"{page.stem}-{number:02d}.png")
            part.save(path)
            written.append(path)
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("out", type=Path, help="folder for the PNG files")
    parser.add_argument("--width", type=int, default=1300)
    parser.add_argument("--height", type=int, default=9000)
    parser.add_argument("--slice", type=int, default=1500)
    args = parser.parse_args(argv)
    if not args.html.is_file():
        raise SystemExit(f"screenshot_report: no such file {args.html}")
    page = screenshot(args.html, args.out / "page.png", args.width, args.height)
    parts = slices(page, args.slice)
    print(f"wrote {page} and {len(parts)} slices")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
