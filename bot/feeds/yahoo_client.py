"""yahoo_client: how riskon talks to Yahoo through yfinance: the Session it hands yfinance, and what its errors mean.

Kept apart from the feed (bot/feeds/yahoo.py), which decides when to poll and which bars are final; the flows and
fragility feeds use the same Session.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

from bot.feeds.quality import retry_after_seconds

YAHOO_HOST = re.compile(r"^https?://[A-Za-z0-9.-]*\.?yahoo\.com(?=[/?:]|$)", re.IGNORECASE)


def _session_base() -> type:
    """Return the Session class yfinance itself prefers (curl_cffi, else requests)."""
    from yfinance import _http

    if _http.HAS_CURL_CFFI:
        from curl_cffi.requests import Session as CurlSession

        return CurlSession
    import requests

    return requests.Session


def yahoo_session(base_url: str | None = None, timeout_seconds: float | None = None) -> Any:
    """Build a Session for yfinance that sends Yahoo requests to `base_url`, holds every request to
    `timeout_seconds` (yfinance's own time-zone lookup waits 10 s otherwise) and remembers Retry-After."""
    base = _session_base()

    class YahooSession(base):  # type: ignore[misc, valid-type]
        """A yfinance-compatible Session with a base-URL override (proxy or mirror) and Retry-After memory."""

        def __init__(self) -> None:
            if base.__module__.startswith("curl_cffi"):
                super().__init__(impersonate="chrome")
            else:
                super().__init__()
            self.base_url = base_url
            self.timeout_seconds = timeout_seconds
            self._local = threading.local()

        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            redirected = bool(self.base_url) and YAHOO_HOST.match(str(url)) is not None
            if redirected:
                url = YAHOO_HOST.sub(self.base_url or "", str(url), count=1)
            if self.timeout_seconds is not None:
                asked = kwargs.get("timeout")
                kwargs["timeout"] = self.timeout_seconds if asked is None else min(asked, self.timeout_seconds)
            try:
                response = super().request(method, url, *args, **kwargs)
            except Exception as exc:
                # yfinance swallows some failures (the time-zone lookup): remember that this thread timed out.
                if "timeout" in type(exc).__name__.lower() or "timed out" in str(exc).lower():
                    self._local.timed_out = True
                raise
            if redirected:
                self._file_cookies_under_yahoo()
            self._local.status = response.status_code
            if response.status_code == 429:
                self._local.retry_after = retry_after_seconds(dict(response.headers))
            return response

        def take_timed_out(self) -> bool:
            """Return (and forget) whether a request of this thread ran out of time."""
            value = getattr(self._local, "timed_out", False)
            self._local.timed_out = False
            return value

        def take_status(self) -> int | None:
            """Return (and forget) the HTTP status of this thread's last response."""
            value = getattr(self._local, "status", None)
            self._local.status = None
            return value

        def _file_cookies_under_yahoo(self) -> None:
            """Copy the mirror's cookies to .yahoo.com, where yfinance looks for (and caches) its session cookie.

            Without this, yfinance never finds its cookie behind a mirror and fetches a new one before every
            request while holding its global lock, which turns concurrent requests into a queue.
            """
            import copy

            jar = getattr(self.cookies, "jar", self.cookies)
            if jar is None:
                return
            for cookie in list(jar):
                if "yahoo" in cookie.domain:
                    continue
                twin = copy.copy(cookie)
                twin.domain, twin.domain_specified, twin.domain_initial_dot = ".yahoo.com", True, True
                jar.set_cookie(twin)

        def take_retry_after(self) -> float | None:
            """Return (and forget) the Retry-After this thread last received."""
            value = getattr(self._local, "retry_after", None)
            self._local.retry_after = None
            return value

    return YahooSession()


class YahooHTTPError(Exception):
    """Yahoo (or the mirror) answered with an HTTP error status."""


class YahooTimeout(Exception):
    """A request to Yahoo (or the mirror) ran out of time."""


class YahooNoBars(Exception):
    """Yahoo (or the mirror) answered a chart request without any bars: an empty, null or incomplete chart."""


# What yfinance raises when a chart answer has no usable bars: its own "missing" errors, and the raw lookup errors
# its time-zone probe lets through (with hide_exceptions off) when the chart is empty, null or lacks `meta`.
SHAPE_ERRORS = (LookupError, TypeError, AttributeError)


def forget_memoised_answers() -> None:
    """Drop yfinance's memo of GET answers, so the next time-zone probe of a failed symbol asks Yahoo again.

    yfinance memoises the probe's answer, a failed one included: without this an empty or garbled answer to it
    would keep failing the symbol, with no new request, for as long as the process runs.
    """
    from yfinance.data import YfData

    YfData.cache_get.cache_clear()


def is_missing(exc: BaseException) -> bool:
    """Say whether yfinance raised one of its "this ticker's data is missing" errors."""
    from yfinance.exceptions import YFTickerMissingError

    return isinstance(exc, YFTickerMissingError)


def no_bars_reason(exc: BaseException, source: str) -> str:
    """Say, naming the symbol, that Yahoo's answer had no bars, with Yahoo's own reason when it gave one."""
    from yfinance.exceptions import YFPricesMissingError, YFTzMissingError

    if isinstance(exc, YFPricesMissingError) and exc.yahoo_reason:
        return f"Yahoo sent no bars for {source}: {str(exc.yahoo_reason)[:160]}"
    if isinstance(exc, YFTzMissingError):
        return f"Yahoo sent no bars for {source} (not even its time zone)"
    if isinstance(exc, SHAPE_ERRORS):
        return f"Yahoo sent no bars for {source} (an empty or incomplete chart)"
    return f"Yahoo sent no bars for {source}"


def describe_failure(exc: BaseException, source: str) -> str:
    """Turn an exception from yfinance (or a timeout) into a one-line reason."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"Yahoo did not answer for {source} in time"
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, (YahooHTTPError, YahooTimeout, YahooNoBars)):
        return text
    if name == "YFRateLimitError":
        after = getattr(exc, "retry_after", None)
        return f"Yahoo rate limit (429){f', retry after {after:g}s' if after else ''}"
    if "JSONDecodeError" in name or "Expecting" in text or "json" in text.lower():
        return f"Yahoo sent malformed data for {source}: {text[:160]}"
    if "Timeout" in name or "timed out" in text.lower():
        return f"Yahoo did not answer for {source} in time"
    return f"{name}: {text[:200]}" if text else name


def quiet_pandas_deprecations() -> None:
    """Silence pandas' Pandas4Warning: yfinance's own use of pandas prints three lines of it per request."""
    import warnings

    import pandas.errors

    category = getattr(pandas.errors, "Pandas4Warning", None)  # pandas 3.1 and later
    # A process-wide filter: yfinance runs in worker threads, where catch_warnings() is not safe to use. Set again
    # whenever it is missing (each poll asks): a thread inside catch_warnings() while it was set (pandas enters it in
    # its own calls) puts back, as it leaves, the filter list it saved, without this one.
    if category is not None and not any(action == "ignore" and kind is category and message is None and module is None
                                        for action, message, kind, module, _ in warnings.filters):
        warnings.filterwarnings("ignore", category=category)
