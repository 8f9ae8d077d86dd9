"""`riskon replay` end to end on the real history, as separate processes sharing one database."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = """
storage: {{path: unused.db}}
feeds:
  history: {{kind: replay, path: {data}}}
symbols:
  - {{id: "^RUT", feed: history, csv: RUT, asset_class: index}}
  - {{id: BTC, feed: history, csv: BTC-USD, asset_class: crypto}}
rules:
  - {{id: ath, kind: new_ath, symbols: ["^RUT", BTC], by: close, rearm_pct: 0, min_gap_days: 30}}
"""

ALERT = re.compile(r"^📈 (\S+) new all-time high: close ([\d,.]+)\n.*?\nBar: (\d{4}-\d\d-\d\d)", re.M | re.S)


def riskon(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def closing_highs(path: Path, start: str | None = None) -> list[tuple[str, float]]:
    """Return every day whose close beat every earlier close (from the CSV directly), on or after `start`."""
    out, best = [], None
    with path.open() as handle:
        for row in csv.DictReader(handle):
            close = float(row["close"])
            if best is not None and close > best and (start is None or row["date"] >= start):
                out.append((row["date"], close))
            best = close if best is None else max(best, close)
    return out


@pytest.fixture
def workdir(tmp_path, market_data):
    (tmp_path / "config.yaml").write_text(CONFIG.format(data=market_data))
    return tmp_path


def test_replay_prints_every_closing_high_the_data_holds_and_a_second_replay_prints_none(workdir, market_data):
    first = riskon("replay", "--data", str(market_data), "--from", "2020-01-01", "--db", "r.db", cwd=workdir)
    assert first.returncode == 0, first.stderr
    printed = [(m.group(1), m.group(3), float(m.group(2).replace(",", ""))) for m in ALERT.finditer(first.stdout)]
    expected = [("^RUT", d, c) for d, c in closing_highs(market_data / "RUT.csv", "2020-01-01")]
    expected += [("BTC", d, c) for d, c in closing_highs(market_data / "BTC-USD.csv", "2020-01-01")]
    assert sorted((s, d) for s, d, _ in printed) == sorted((s, d) for s, d, _ in expected)
    for (_, _, shown), (_, _, real) in zip(sorted(printed), sorted(expected)):
        assert shown == pytest.approx(real, abs=0.006)
    # The November 2021 closing high of ^RUT (2442.74, SOURCES.md's sanity check) is among them.
    assert ("^RUT", "2021-11-08") in {(s, d) for s, d, _ in printed}
    assert "replay done" in first.stdout

    second = riskon("replay", "--data", str(market_data), "--from", "2020-01-01", "--db", "r.db", cwd=workdir)
    assert second.returncode == 0, second.stderr
    assert ALERT.findall(second.stdout) == []
    assert "0 new alert(s)" in second.stdout


def test_history_before_from_is_silent_warm_up(workdir, market_data):
    result = riskon("replay", "--data", str(market_data), "--from", "2024-06-01", "--to", "2024-12-31",
                    "--db", "r.db", cwd=workdir)
    assert result.returncode == 0, result.stderr
    found = [(m.group(1), m.group(3)) for m in ALERT.finditer(result.stdout)]
    assert found and all("2024-06-01" <= d <= "2024-12-31" for _, d in found)
    # On 2024-11-25 ^RUT traded at 2466.49 but closed at 2442.03, under its 2021-11-08 closing high of 2442.74:
    # a close-based rule that warmed up on the whole history must stay silent on ^RUT all through 2024.
    assert [d for s, d in found if s == "^RUT"] == []
    # BTC closed at a record on 2024-11-11 (88,701) after the US election.
    assert ("BTC", "2024-11-11") in found


def test_a_replay_stopped_midway_resumes_with_the_same_alerts(workdir, market_data):
    whole = riskon("replay", "--data", str(market_data), "--from", "2023-01-01", "--to", "2025-06-30",
                   "--db", "whole.db", cwd=workdir)
    part1 = riskon("replay", "--data", str(market_data), "--from", "2023-01-01", "--to", "2024-03-31",
                   "--db", "split.db", cwd=workdir)
    part2 = riskon("replay", "--data", str(market_data), "--from", "2023-01-01", "--to", "2025-06-30",
                   "--db", "split.db", cwd=workdir)
    for result in (whole, part1, part2):
        assert result.returncode == 0, result.stderr
    alerts = lambda r: [(m.group(1), m.group(3)) for m in ALERT.finditer(r.stdout)]  # noqa: E731
    assert alerts(whole) == alerts(part1) + alerts(part2)
    assert alerts(part1) and alerts(part2)


def test_missing_data_folder_is_a_clear_error(workdir):
    result = riskon("replay", "--data", str(workdir / "nowhere"), "--db", "r.db", cwd=workdir)
    assert result.returncode == 1
    assert "no such folder" in result.stderr
    assert not (workdir / "r.db").exists()


def test_shipped_config_replays_to_the_end_with_its_composite_in_lockstep(tmp_path, market_data):
    """The default config's ALTS composite steps with each replayed day, and the replay finishes by itself."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "replay", "--config", str(Path(__file__).resolve().parents[2] / "config.yaml"),
         "--data", str(market_data), "--from", "2024-01-01", "--db", "r.db"],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
        env={**__import__("os").environ, "RISKON_MARKET_DATA": str(market_data)},
    )
    assert result.returncode == 0, result.stderr
    assert "replay done" in result.stdout
    summary = result.stdout.split("replay done", 1)[1]
    assert " ALTS " in summary and " BTC " in summary and " ^RUT " in summary
