"""A fund's shares outstanding over days: the counts, their cleaning, the flows they imply, and the CSV files of them.

Shared by the live flows feed (flows.py) and the flows over history (flow_history.py).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Iterable, Mapping, Sequence


@dataclass(frozen=True)
class SharesCount:
    """Shares outstanding of a fund on a day, with its NAV when the source gave one."""

    day: date
    shares: float
    nav: float | None = None
    source: str = ""


def day_stamp(day: date) -> datetime:
    """Return midnight UTC of a day: the time a daily flow is stored under."""
    return datetime.combine(day, time(0), timezone.utc)


def clean_shares(counts: Iterable[SharesCount], max_change_pct: float = 8.0,
                 max_unchanged_days: int = 10) -> tuple[list[SharesCount], list[tuple[SharesCount, str]]]:
    """Keep one trustworthy count per day; drop duplicates, one-day excursions and stale repeats, with reasons."""
    dropped: list[tuple[SharesCount, str]] = []
    by_day: dict[date, list[SharesCount]] = {}
    for count in counts:
        if not (count.shares == count.shares) or count.shares <= 0:  # NaN or non-positive
            dropped.append((count, "shares outstanding missing or not positive"))
            continue
        by_day.setdefault(count.day, []).append(count)
    # One value per day: when a source reports two for a date, the one continuing the series is kept.
    chosen: list[SharesCount] = []
    for day in sorted(by_day):
        candidates = by_day[day]
        distinct = {c.shares for c in candidates}
        if len(distinct) == 1:
            chosen.append(next((c for c in candidates if c.nav is not None), candidates[-1]))
            continue
        reference = chosen[-1].shares if chosen else sorted(distinct)[len(distinct) // 2]
        best = min(candidates, key=lambda c: abs(c.shares - reference))
        chosen.append(best)
        for other in candidates:
            if other.shares != best.shares:
                dropped.append((other, f"second value for {day} ({other.shares:,.0f} vs {best.shares:,.0f})"))
    # One-day excursions that revert are stale or wrong values, not a creation and a redemption.
    kept: list[SharesCount] = []
    index = 0
    while index < len(chosen):
        count = chosen[index]
        if kept:
            move = (count.shares / kept[-1].shares - 1) * 100
            if abs(move) > max_change_pct:
                following = chosen[index + 1] if index + 1 < len(chosen) else None
                if following is None:
                    dropped.append((count, f"shares moved {move:+.1f}% in a day: held until the next day confirms"))
                    index += 1
                    continue
                if abs(following.shares / kept[-1].shares - 1) * 100 <= max_change_pct / 2:
                    dropped.append((count, f"shares moved {move:+.1f}% for one day and came back: a bad value"))
                    index += 1
                    continue
        kept.append(count)
        index += 1
    # A count that never changes for weeks is a source stuck on an old value.
    result: list[SharesCount] = []
    run_start = 0
    for position, count in enumerate(kept):
        if position and count.shares != kept[position - 1].shares:
            run_start = position
        if (count.day - kept[run_start].day).days > max_unchanged_days:
            dropped.append((count, f"unchanged since {kept[run_start].day}: a stale value"))
            continue
        result.append(count)
    return result, dropped


# The source of a count derived as total assets / NAV (snapshots without a shares column): it is a
# different measure from reported shares, so no flow is computed across a change between the two.
ASSETS_OVER_NAV = "assets/nav"


def implied_flows(counts: Sequence[SharesCount], nav_of: Mapping[date, float] | None = None,
                  max_gap_days: int = 5) -> list[tuple[date, float, float]]:
    """Return (day, flow_usd, nav) for each count after the first: change in shares x that day's NAV.

    Without a NAV from the source, the close of that day stands in (or the last close before it, for a count
    dated on a market holiday).
    The change between two counts up to `max_gap_days` apart is the net flow of the days between them, dated
    on the later count; across a longer gap the flows are unknown and none is returned.
    """
    flows = []
    for before, after in zip(counts, counts[1:]):
        if (after.day - before.day).days > max_gap_days:
            continue
        if (before.source == ASSETS_OVER_NAV) != (after.source == ASSETS_OVER_NAV):
            continue  # the measure changed, not the shares
        nav = after.nav if after.nav is not None else _last_price(nav_of or {}, after.day, max_gap_days)
        if nav is None or not nav > 0:
            continue
        flows.append((after.day, (after.shares - before.shares) * nav, nav))
    return flows


# Snapshot files with one row per day and ticker (stockanalysis.com scrapes): shares in millions, assets
# in USD millions, NAV per share.
SNAPSHOT_COLUMNS = {"snapshot_date_utc", "ticker", "shares_out_millions", "total_assets_musd", "nav"}


def _last_price(prices: Mapping[date, float], day: date, max_days: int) -> float | None:
    """Return the price of `day`, or the last one before it within `max_days` (a count dated on a holiday)."""
    for back in range(max_days + 1):
        price = prices.get(day - timedelta(days=back))
        if price is not None:
            return price
    return None


def read_flows_csv(path: str | Path, fund: str | None = None
                   ) -> tuple[list[tuple[date, float]], list[SharesCount], list[str]]:
    """Read `date,flow_usd`, `date,shares_outstanding[,nav]` or a snapshot file; return flows, counts, bad rows.

    A snapshot file (columns snapshot_date_utc, ticker, shares_out_millions, total_assets_musd, nav) holds
    several funds: only `fund`'s rows are read. Where its shares column is blank, total assets / NAV stands in.
    """
    path = Path(path)
    flows: list[tuple[date, float]] = []
    counts: list[SharesCount] = []
    problems: list[str] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: a spreadsheet's byte-order mark
        reader = csv.DictReader(handle)
        fields = {f.strip().lower() for f in reader.fieldnames or ()}
        if SNAPSHOT_COLUMNS <= fields:
            return [], *_read_snapshots(path, reader, fund)
        if "date" not in fields or not ({"flow_usd", "shares_outstanding"} & fields):
            raise ValueError(f"{path}: needs columns date,flow_usd or date,shares_outstanding[,nav] (or a "
                             f"snapshot file: {', '.join(sorted(SNAPSHOT_COLUMNS))}); "
                             f"found {', '.join(sorted(fields)) or 'none'}")
        for line, raw in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
            try:
                day = date.fromisoformat(row["date"][:10])
                if "flow_usd" in row and row["flow_usd"]:
                    flows.append((day, _finite(row["flow_usd"], "flow_usd")))
                elif row.get("shares_outstanding"):
                    nav = _finite(row["nav"], "nav", positive=True) if row.get("nav") else None
                    shares = _finite(row["shares_outstanding"], "shares_outstanding", positive=True)
                    counts.append(SharesCount(day, shares, nav, "csv"))
                else:
                    raise ValueError("no flow_usd or shares_outstanding value")
            except (ValueError, KeyError) as exc:
                problems.append(f"{path.name}:{line}: {exc}")
    return flows, counts, problems


def _finite(text: str, column: str, positive: bool = False) -> float:
    """Read a number (thousands commas allowed); inf, nan (or, when `positive`, 0 and below) is a bad row."""
    # An inf flow summed into a window reads as "$inf redeemed": an outflow alert from nothing that happened.
    value = float(text.replace(",", ""))
    if not math.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"{column} {text!r} is not a {'positive ' if positive else ''}finite number")
    return value


def _read_snapshots(path: Path, reader: csv.DictReader, fund: str | None) -> tuple[list[SharesCount], list[str]]:
    """Read one fund's rows of a snapshot file as shares counts (with NAV)."""
    if fund is None:
        raise ValueError(f"{path}: a snapshot file holds several funds; say which one to read")
    counts: list[SharesCount] = []
    problems: list[str] = []
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        if row.get("ticker", "").upper() != fund.upper():
            continue
        try:
            day = date.fromisoformat(row["snapshot_date_utc"][:10])
            nav = _finite(row["nav"], "nav", positive=True) if row.get("nav") else None
            if row.get("shares_out_millions"):
                shares = _finite(row["shares_out_millions"], "shares_out_millions", positive=True) * 1e6
                counts.append(SharesCount(day, shares, nav, f"{path.name}:{line}"))
            elif row.get("total_assets_musd") and nav:
                shares = _finite(row["total_assets_musd"], "total_assets_musd", positive=True) * 1e6 / nav
                counts.append(SharesCount(day, shares, nav, ASSETS_OVER_NAV))
            else:
                raise ValueError("no shares_out_millions, nor total_assets_musd with a nav")
        except (ValueError, KeyError) as exc:
            problems.append(f"{path.name}:{line}: {exc}")
    return counts, problems
