"""Fragility history obtained elsewhere: `date,unprofitable_pct_count,unprofitable_pct_weight,coverage_pct`."""

from __future__ import annotations

import csv
import math
from datetime import date, datetime, timezone
from pathlib import Path

from alerts.bars import Bar

COLUMNS = ("date", "unprofitable_pct_count", "unprofitable_pct_weight", "coverage_pct")


def _percent(text: str, column: str) -> float | None:
    """Read a percent (blank: unknown); refuse what is not a number from 0 to 100."""
    text = text.strip().rstrip("%").strip()
    if not text:
        return None
    value = float(text)
    if not math.isfinite(value) or not 0 <= value <= 100:
        raise ValueError(f"{column} {text[:20]} is not a percent from 0 to 100")
    return value


def read_fragility_csv(path: str | Path) -> tuple[list[tuple[date, float, float | None, float | None]], list[str]]:
    """Read snapshots as (day, pct by count, pct by weight, coverage); return them and the bad rows, named."""
    path = Path(path)
    rows: list[tuple[date, float, float | None, float | None]] = []
    problems: list[str] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = [f.strip().lower() for f in reader.fieldnames or ()]
        if "date" not in fields or "unprofitable_pct_count" not in fields:
            raise ValueError(f"{path}: needs columns {','.join(COLUMNS)} (weight and coverage may be blank); "
                             f"found {', '.join(fields) or 'none'}")
        seen: set[date] = set()
        for line, raw in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): (v or "") for k, v in raw.items()}
            try:
                day = date.fromisoformat(row["date"].strip()[:10])
                count = _percent(row["unprofitable_pct_count"], "unprofitable_pct_count")
                if count is None:
                    raise ValueError("unprofitable_pct_count is blank")
                weight = _percent(row.get("unprofitable_pct_weight", ""), "unprofitable_pct_weight")
                coverage = _percent(row.get("coverage_pct", ""), "coverage_pct")
            except ValueError as exc:
                problems.append(f"{path.name}:{line}: {exc}")
                continue
            if day in seen:
                problems.append(f"{path.name}:{line}: {day} is listed twice; the first row is kept")
                continue
            seen.add(day)
            rows.append((day, count, weight, coverage))
    return sorted(rows), problems


def is_fragility_csv(path: str | Path) -> bool:
    """Say whether a CSV has the fragility history header (rather than date,open,high,low,close)."""
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        header = handle.readline().lower()
    return "unprofitable_pct_count" in header


def series_bars(path: str | Path, symbol: str) -> tuple[list[Bar], list[str]]:
    """Read a fragility history CSV as the daily bars of one series (`FUND:UNPROFITABLE` or `..._WEIGHT`)."""
    rows, problems = read_fragility_csv(path)
    by_weight = symbol.upper().endswith("_WEIGHT")
    bars = []
    for day, count, weight, _ in rows:
        value = weight if by_weight else count
        if value is not None:
            stamp = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            bars.append(Bar(stamp, value, value, value, value))
    return bars, problems
