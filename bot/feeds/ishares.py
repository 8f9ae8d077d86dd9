"""The iShares site: downloading a fund file (redirected when configured) and reading a fund's shares from it."""

from __future__ import annotations

import csv
import re
from datetime import date, datetime
from typing import Any

from bot.feeds.fund_shares import SharesCount
from bot.feeds.quality import retry_after_seconds

ISHARES_HOST = re.compile(r"^https?://(www\.)?ishares\.com", re.IGNORECASE)


async def download_ishares(http: Any, url: str, base_url: str | None, what: str) -> str:
    """GET an iShares file through `http` (to `base_url` instead of ishares.com when set); raise on 429 and errors.

    A 429's error carries `retry_after` (seconds, from the answer's Retry-After) for the feed's back-off.
    """
    if base_url:
        url = ISHARES_HOST.sub(base_url, url, count=1)
    async with http.get(url) as response:
        if response.status == 429:
            error = RuntimeError(f"{what}: rate limited (429)")
            error.retry_after = retry_after_seconds(dict(response.headers))  # type: ignore[attr-defined]
            raise error
        if response.status >= 400:
            raise RuntimeError(f"{what}: HTTP {response.status}")
        return await response.text(errors="replace")


def parse_ishares_fund_csv(text: str) -> SharesCount:
    """Read the as-of date, shares outstanding (and NAV when given) from the header of an iShares fund CSV."""
    values: dict[str, str] = {}
    for row in csv.reader(text.splitlines()[:30]):
        if len(row) >= 2 and row[0].strip():
            values[row[0].strip().lower()] = row[1].strip()
    as_of = values.get("fund holdings as of") or values.get("as of") or values.get("as of date")
    shares = values.get("shares outstanding")
    if not as_of or not shares:
        raise ValueError("iShares answer has no 'Fund Holdings as of' and 'Shares Outstanding' lines")
    day = parse_ishares_date(as_of)
    nav_text = values.get("nav") or values.get("net asset value")
    nav = float(re.sub(r"[^0-9.]", "", nav_text)) if nav_text and re.search(r"\d", nav_text) else None
    return SharesCount(day, float(re.sub(r"[^0-9.]", "", shares)), nav, "ishares")


def parse_ishares_date(text: str) -> date:
    """Read a date as iShares writes it (May 15, 2026; 2026-05-15; 05/15/2026; 15-May-2026)."""
    for pattern in ("%b %d, %Y", "%B %d, %Y", "%Y-%m-%d", "%m/%d/%Y", "%d-%b-%Y"):
        try:
            return datetime.strptime(text.strip(), pattern).date()
        except ValueError:
            continue
    raise ValueError(f"iShares date '{text}' is not in a known format")
