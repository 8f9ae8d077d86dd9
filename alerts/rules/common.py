"""Helpers shared by rule kinds: levels per symbol, JSON-safe times, percent moves."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from pydantic import Field

from alerts.times import utc_text

# A level list for every symbol of the rule, or a list per symbol id ({"^RUT": [2442.74], "IWM": [244.46]}).
LevelsParam = list[float] | dict[str, list[float]]


def levels_field(description: str) -> Any:
    """Build the pydantic field for a `levels` parameter."""
    return Field(default_factory=list, description=description)


def levels_for(levels: LevelsParam, symbol: str) -> tuple[float, ...]:
    """Return the levels configured for a symbol, highest first, without duplicates."""
    chosen: Sequence[float] = levels.get(symbol, ()) if isinstance(levels, Mapping) else levels
    return tuple(sorted({float(level) for level in chosen if level > 0}, reverse=True))


class KeyedLevels:
    """A rule's levels per symbol with their JSON keys, highest first, worked out once (parameters are frozen)."""

    def __init__(self, levels: LevelsParam) -> None:
        self.levels = levels
        self._by_symbol: dict[str, tuple[tuple[float, str], ...]] = {}

    def of(self, symbol: str) -> tuple[tuple[float, str], ...]:
        """Return (level, key) for each level configured for a symbol."""
        found = self._by_symbol.get(symbol)
        if found is None:
            found = self._by_symbol[symbol] = tuple((level, level_key(level)) for level in levels_for(self.levels, symbol))
        return found


def check_levels(levels: LevelsParam) -> LevelsParam:
    """Refuse levels that are not positive prices, naming the bad one."""
    items = levels.items() if isinstance(levels, Mapping) else [("", levels)]
    for symbol, values in items:
        for value in values:
            if not value > 0 or value != value or value == float("inf"):
                where = f" for {symbol}" if symbol else ""
                raise ValueError(f"level {value}{where} must be a positive price")
    return levels


def level_key(level: float) -> str:
    """Return the JSON key (and event discriminator) of a price level."""
    return f"{level:.10g}"


# The first bar time assumed for a rule state saved before warm-up was tracked: it has seen its history.
WARM_BEFORE = "1970-01-01T00:00:00+00:00"


def iso(moment: datetime) -> str:
    """Return a bar time as text for JSON state."""
    if moment.tzinfo is not timezone.utc:
        return moment.isoformat()
    # Rules write the same few bar times over and over (state on every step): each is formatted once.
    return utc_text(moment)


def parse_time(text: str) -> datetime:
    """Read a bar time back from JSON state."""
    return datetime.fromisoformat(text)


def pct_change(start: float, end: float) -> float:
    """Return the percent change from `start` to `end`, rounded past float noise so 100 -> 90 is -10 exactly."""
    return round((end / start - 1.0) * 100.0, 9)


# Rounding to 9 decimals moves a percent change by at most half a billionth: a change farther than this from
# a mark is on the same side of it rounded or not, and is compared without the rounding (a slow call).
ROUNDING_MARGIN = 1e-6


def pct_change_reaches(start: float, end: float, mark: float) -> bool:
    """Say whether pct_change(start, end) >= mark, rounding only a change within float noise of the mark."""
    raw = (end / start - 1.0) * 100.0
    if raw - mark > ROUNDING_MARGIN:
        return True
    if mark - raw > ROUNDING_MARGIN:
        return False
    return round(raw, 9) >= mark


# Prices and thresholds are floats: 100 * 1.005 is 100.49999999999999. A tie must stay a tie, so
# "above" and "below" ignore differences smaller than a billionth of the price.
TIE = 1e-9
ABOVE_TIE, BELOW_TIE = 1 + TIE, 1 - TIE  # for a hot loop that compares inline: above(p, t) is p > t * ABOVE_TIE


def above(price: float, threshold: float) -> bool:
    """Say whether a price is above a threshold by more than float noise (a tie is not above)."""
    return price > threshold * ABOVE_TIE


def below(price: float, threshold: float) -> bool:
    """Say whether a price is below a threshold by more than float noise (a tie is not below)."""
    return price < threshold * BELOW_TIE
