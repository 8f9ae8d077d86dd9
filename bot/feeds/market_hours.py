"""Market hours from an exchange calendar: whether the market trades now, which daily bar is final, the next open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any


@dataclass(frozen=True)
class MarketClock:
    """Where the market stands at a moment: the current session and whether it trades now."""

    session: date  # the session of today, or the last one before today
    is_open: bool
    last_confirmable: date | None  # newest session whose bar is final and confirmable now
    close_at: datetime | None  # close of `session` (early closes included)


def market_clock(calendar: Any, now: datetime, confirm_delay: timedelta) -> MarketClock:
    """Say whether the market trades at `now` and which session's daily bar can be confirmed."""
    import pandas as pd

    # The newest session opened by now. Not the one of today's UTC date: Sydney, Auckland and CME open the evening
    # before their session's date (in UTC), and taken by the date they counted as closed while trading.
    tomorrow = pd.Timestamp(now.astimezone(timezone.utc).date() + timedelta(days=1))
    session = calendar.date_to_session(tomorrow, direction="previous")
    opens = calendar.session_open(session).to_pydatetime()
    for _ in range(2):  # tomorrow's session has not begun, nor (before dawn) today's
        if opens <= now:
            break
        session = calendar.previous_session(session)
        opens = calendar.session_open(session).to_pydatetime()
    closes = calendar.session_close(session).to_pydatetime()
    previous = calendar.previous_session(session)
    if now < opens:
        return MarketClock(previous.date(), False, previous.date(), calendar.session_close(previous).to_pydatetime())
    if now < closes:
        # Where one session opens as the last closes (CME), the last one's bar is not final for a while yet.
        if now < calendar.session_close(previous).to_pydatetime() + confirm_delay:
            return MarketClock(session.date(), True, calendar.previous_session(previous).date(), closes)
        return MarketClock(session.date(), True, previous.date(), closes)
    confirmable = session.date() if now >= closes + confirm_delay else previous.date()
    return MarketClock(session.date(), False, confirmable, closes)


def next_open(calendar: Any, now: datetime) -> datetime:
    """Return the first session open after `now`, from the calendar's session tables."""
    import pandas as pd

    # Not calendar.next_open: it builds a table of every trading minute of 20 years (30 MB, 0.6 s) to answer.
    session = calendar.date_to_session(pd.Timestamp(now.astimezone(timezone.utc).date()), direction="next")
    opens = calendar.session_open(session).to_pydatetime()
    for _ in range(3):  # a session may open the evening before its date (futures): step past the ones begun
        if opens > now:
            break
        session = calendar.next_session(session)
        opens = calendar.session_open(session).to_pydatetime()
    return opens
