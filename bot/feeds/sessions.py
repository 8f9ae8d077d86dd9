"""A feed's HTTP sessions for iShares' files (aiohttp) and Yahoo (yfinance's), each opened when first used."""

from __future__ import annotations

from typing import Any

from bot.feeds.libraries import load_library


class FeedSessions:
    """Open a feed's iShares and Yahoo sessions on first use, and close whichever were opened."""

    def __init__(self, user_agent: str, ishares_timeout_seconds: float, yahoo_base_url: str | None) -> None:
        self.user_agent, self.ishares_timeout_seconds, self.yahoo_base_url = (
            user_agent, ishares_timeout_seconds, yahoo_base_url)
        self._ishares: Any = None
        self._yahoo: Any = None

    async def ishares(self) -> Any:
        """Return the aiohttp session for iShares' files, opening it the first time."""
        if self._ishares is None:
            aiohttp = await load_library("aiohttp")  # a third of a second of imports: not on the event loop
            self._ishares = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.ishares_timeout_seconds),
                                                  headers={"User-Agent": self.user_agent})
        return self._ishares

    @property
    def has_yahoo(self) -> bool:
        """Say whether the Yahoo session is open (yfinance is loaded and set up by then)."""
        return self._yahoo is not None

    def yahoo(self) -> Any:
        """Return yfinance's session for Yahoo, opening it the first time (yfinance must be imported by then)."""
        if self._yahoo is None:
            from bot.feeds.yahoo_client import yahoo_session

            self._yahoo = yahoo_session(self.yahoo_base_url)
        return self._yahoo

    async def close(self) -> None:
        """Close the sessions that were opened; a failing close of Yahoo's (curl) session is not the caller's."""
        if self._ishares is not None:
            await self._ishares.close()
            self._ishares = None
        if self._yahoo is not None:
            try:
                self._yahoo.close()
            except Exception:
                pass
            self._yahoo = None
