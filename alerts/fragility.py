"""Fragility: the share of an index's members losing money over the trailing twelve months. Pure: no I/O, no clock."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Iterable, Sequence

# Four quarter ends span about 273 days; a longer span means a missing quarter, not a trailing year.
MAX_FOUR_QUARTER_SPAN_DAYS = 300


@dataclass(frozen=True)
class MemberIncome:
    """One index member's trailing-twelve-month net income as read, or why there is none."""

    ticker: str
    weight_pct: float
    net_income: float | None  # USD; None when no usable figure was found
    as_of: date | None = None  # the fiscal period end the figure runs to
    source: str = ""  # trailing | quarterly | "" (no data)
    problem: str = ""  # why there is no figure, in words


@dataclass(frozen=True)
class FragilityFigures:
    """A snapshot's tally: members counted, how many lose money, by count and by index weight."""

    members: int
    covered: int
    unprofitable: int
    unprofitable_pct_count: float | None  # of the members covered
    unprofitable_pct_weight: float | None  # of the index weight covered
    coverage_pct_weight: float  # index weight with a figure, of all members' weight
    no_data: tuple[str, ...] = ()  # tickers without a figure: reported, never counted either way

    @property
    def coverage_pct_count(self) -> float:
        """Return the share of members (by count) that have a figure."""
        return 100.0 * self.covered / self.members if self.members else 0.0


def trailing_from_quarters(quarters: Iterable[tuple[date, float]]) -> tuple[float, date] | None:
    """Sum the four newest quarters into a trailing-year figure; None unless they are four consecutive quarters."""
    known = sorted(((day, value) for day, value in quarters if value is not None and math.isfinite(value)),
                   reverse=True)
    if len(known) < 4:
        return None
    newest_four = known[:4]
    if (newest_four[0][0] - newest_four[3][0]).days > MAX_FOUR_QUARTER_SPAN_DAYS:
        return None
    return sum(value for _, value in newest_four), newest_four[0][0]


def tally(members: Sequence[MemberIncome]) -> FragilityFigures:
    """Count the members with a figure and the share of them losing money, by count and by weight."""
    covered = [m for m in members if m.net_income is not None]
    losing = [m for m in covered if m.net_income < 0]  # type: ignore[operator]
    total_weight = sum(max(m.weight_pct, 0.0) for m in members)
    covered_weight = sum(max(m.weight_pct, 0.0) for m in covered)
    losing_weight = sum(max(m.weight_pct, 0.0) for m in losing)
    return FragilityFigures(
        members=len(members),
        covered=len(covered),
        unprofitable=len(losing),
        unprofitable_pct_count=100.0 * len(losing) / len(covered) if covered else None,
        unprofitable_pct_weight=100.0 * losing_weight / covered_weight if covered_weight > 0 else None,
        coverage_pct_weight=100.0 * covered_weight / total_weight if total_weight > 0 else 0.0,
        no_data=tuple(m.ticker for m in members if m.net_income is None),
    )


def describe_fragility(pct_count: float | None, pct_weight: float | None, as_of: date,
                       coverage_pct: float | None) -> str:
    """Say the snapshot in a trader's words: 'Unprofitable members: 41 % (by count), 18 % of index weight, ...'."""
    count = f"{pct_count:.0f} %" if pct_count is not None else "n/a"
    weight = f", {pct_weight:.0f} % of index weight" if pct_weight is not None else ""
    coverage = f" (coverage {coverage_pct:.0f} %)" if coverage_pct is not None else ""
    return f"Unprofitable members: {count} (by count){weight}, as of {as_of:%Y-%m-%d}{coverage}"
