"""A symbol's daily closes as two numpy arrays: UTC calendar days (days since 1970-01-01) and closes.

The study, co-movement and claims read closes by day number and position (searchsorted, slices), which is all
they need of a time series; numpy alone does it, so a backtest does not load pandas (about 0.4 s).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

EPOCH = date(1970, 1, 1)
_EPOCH_ORDINAL = EPOCH.toordinal()


def day_number(day: date | datetime) -> int:
    """Return days since 1970-01-01 of a calendar day (a datetime's own date)."""
    return day.toordinal() - _EPOCH_ORDINAL


def as_date(number: int | np.integer) -> date:
    """Return the calendar day of a day number."""
    return EPOCH + timedelta(days=int(number))


@dataclass(frozen=True, eq=False)
class Closes:
    """Daily closes oldest first, one per day: `days` (int64 day numbers, increasing) and `values` (float64)."""

    days: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, days: Iterable[date | datetime], values: Iterable[float]) -> Closes:
        """Return closes from days and values in any order; a day given twice keeps its last value."""
        numbers = np.array([day.toordinal() for day in days], dtype=np.int64) - _EPOCH_ORDINAL
        closes = np.array(values if isinstance(values, (list, np.ndarray)) else list(values), dtype=np.float64)
        if numbers.size != closes.size:
            raise ValueError(f"{numbers.size} days but {closes.size} closes")
        if numbers.size < 2 or bool((numbers[1:] > numbers[:-1]).all()):
            return cls(numbers, closes)
        by_day = dict(zip(numbers.tolist(), closes.tolist()))
        order = sorted(by_day)
        return cls(np.array(order, dtype=np.int64), np.array([by_day[d] for d in order], dtype=np.float64))

    @classmethod
    def empty(cls) -> Closes:
        """Return closes with no day."""
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))

    def __len__(self) -> int:
        return int(self.days.size)

    def dates(self) -> list[date]:
        """Return the days as dates."""
        return [as_date(d) for d in self.days.tolist()]

    def on(self, day: date) -> float:
        """Return the close of a day (KeyError when the day has none)."""
        number = day_number(day)
        at = int(np.searchsorted(self.days, number))
        if at == self.days.size or self.days[at] != number:
            raise KeyError(day)
        return float(self.values[at])

    def known(self) -> Closes:
        """Return the closes without missing values (NaN)."""
        keep = ~np.isnan(self.values)
        return self if keep.all() else Closes(self.days[keep], self.values[keep])

    def between(self, first: date | None = None, last: date | None = None) -> Closes:
        """Return the closes from `first` to `last`, both included (None: open-ended)."""
        start = 0 if first is None else int(np.searchsorted(self.days, day_number(first), side="left"))
        end = self.days.size if last is None else int(np.searchsorted(self.days, day_number(last), side="right"))
        return Closes(self.days[start:end], self.values[start:end])

    def years(self) -> np.ndarray:
        """Return each day's calendar year."""
        return self.days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
