"""A company's trailing-twelve-month net income from Yahoo, through yfinance's income statement."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from alerts.fragility import trailing_from_quarters


@dataclass(frozen=True)
class Reading:
    """What Yahoo said about one company: its TTM net income and period end, or why there is none."""

    net_income: float | None
    as_of: date | None = None
    source: str = ""  # trailing | quarterly | "" (no figure)
    problem: str = ""


class RateLimited(Exception):
    """Yahoo answered 429: every request must wait `retry_after` seconds (None: Yahoo did not say)."""

    def __init__(self, retry_after: float | None) -> None:
        super().__init__("Yahoo answered 429 Too Many Requests"
                         + (f" (Retry-After {retry_after:g} s)" if retry_after is not None else ""))
        self.retry_after = retry_after


class TryLater(Exception):
    """Yahoo (or the way to it) failed for a reason that may pass: a 5xx, a timeout, a dropped connection."""


class _NotListed(Exception):
    """Yahoo answered 404: it does not know the symbol (delisted, renamed, or a ticker it spells differently)."""


class Pace:
    """Space requests at least 1/rate seconds apart across threads; a Retry-After holds every later one back."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.next_at = 0.0  # monotonic time of the next free slot
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until this request's slot comes."""
        with self._lock:
            now = time.monotonic()
            at = max(now, self.next_at)
            self.next_at = at + self.interval
        if at > now:
            time.sleep(at - now)

    def hold(self, seconds: float) -> None:
        """Make every later request wait at least `seconds` from now."""
        with self._lock:
            self.next_at = max(self.next_at, time.monotonic() + seconds)

    def ready_in(self) -> float:
        """Return the seconds until the next request may go."""
        return max(0.0, self.next_at - time.monotonic())


def read_net_income(symbol: str, session: Any, pace: Pace | None = None) -> Reading:
    """Return the trailing figure (`trailingNetIncome`), else the sum of the last four quarters; never a guess."""
    import yfinance as yf

    ticker = yf.Ticker(symbol, session=session)
    try:
        trailing = _net_income_row(ticker, "trailing", session, pace)
        newest = next(iter(trailing), None)
        if newest is not None:
            return Reading(newest[1], newest[0], "trailing")
        quarters = _net_income_row(ticker, "quarterly", session, pace)
    except _NotListed as exc:
        return Reading(None, problem=str(exc))
    summed = trailing_from_quarters(quarters)
    if summed is not None:
        return Reading(summed[0], summed[1], "quarterly")
    if quarters:
        return Reading(None, problem=f"no trailing figure and only {len(quarters)} recent quarter(s) of net income")
    return Reading(None, problem="Yahoo has no net income for it")


def _net_income_row(ticker: Any, freq: str, session: Any, pace: Pace | None) -> list[tuple[date, float]]:
    """Return the statement's NetIncome row as (period end, value), newest first; [] when Yahoo has none."""
    if pace is not None:
        pace.wait()
    try:
        frame = ticker.get_income_stmt(freq=freq)
    except Exception as exc:  # yfinance raises many kinds; the HTTP status says which they are
        problem = _classify(exc, session)
        if problem is None:
            return []  # Yahoo answered with an empty result: no figure
        raise problem from exc
    session.take_status()
    if frame is None or "NetIncome" not in getattr(frame, "index", ()):
        return []
    row = frame.loc["NetIncome"]
    points = [(stamp.date(), float(value)) for stamp, value in row.items()
              if value is not None and math.isfinite(float(value))]
    return sorted(points, reverse=True)


def _classify(exc: BaseException, session: Any) -> Exception | None:
    """Say what a yfinance failure was: rate limited, try later, not listed, or None for an answer with no data."""
    from yfinance.data import YfData

    retry_after = session.take_retry_after()
    status = session.take_status()
    if retry_after is not None or status == 429 or type(exc).__name__ == "YFRateLimitError":
        return RateLimited(retry_after)
    if status == 404:
        return _NotListed("Yahoo does not know the symbol (404: delisted, renamed or spelled differently)")
    if (status is not None and status >= 400) or _is_transport_error(exc):
        # yfinance memoises answers by URL: forget the failed one, or the retry would read it again.
        YfData.cache_get.cache_clear()
        what = f"HTTP {status}" if status is not None and status >= 400 else f"{type(exc).__name__}: {exc}"
        return TryLater(f"Yahoo failed: {what}"[:200])
    return None


def _is_transport_error(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__) if e is not None}
    transport = {"Timeout", "TimeoutError", "ConnectionError", "ConnectTimeout", "ReadTimeout", "ChunkedEncodingError",
                 "RemoteDisconnected", "RequestException", "CurlError", "JSONDecodeError"}
    return bool(names & transport) or isinstance(exc, (OSError, TimeoutError))
