"""exchange_client: the ccxt side of an exchange feed (client, paged daily candles, a ticker's price, error meanings).

The feed (exchange.py) and its websocket tickers (exchange_stream.py) both read ccxt through these.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Mapping

from bot.feeds.quality import retry_after_seconds

log = logging.getLogger("riskon.feeds.exchange")

DAY_MS = 86_400_000
GENESIS_MS = 1_230_940_800_000  # 2009-01-03: no crypto traded before
EMPTY_STEP_MS = 200 * DAY_MS  # how far to look on past an empty page before a listing (below any exchange's page)
MAX_PAGES = 60  # a guard against a source that never ends: 60 pages reach back over 30 years
HOST = re.compile(r"^(https?|wss?)://[^/]+", re.IGNORECASE)


def make_client(exchange_id: str, stream: bool, timeout_seconds: float, rate_limit_ms: int | None,
                options: Mapping[str, Any], base_url: str | None) -> Any:
    """Build the ccxt client (ccxt.pro when streaming), sent to `base_url` instead of the exchange's hosts when set."""
    if stream:
        import ccxt.pro as module
    else:
        import ccxt.async_support as module
    ccxt_options = {"fetchMarkets": {"types": ["spot"]}} if exchange_id.startswith("binance") else {}
    ccxt_options.update(options)
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": int(timeout_seconds * 1000),
        "options": ccxt_options,
    }
    if rate_limit_ms is not None:
        config["rateLimit"] = rate_limit_ms
    exchange = getattr(module, exchange_id)(config)
    if base_url:
        exchange.urls["api"] = redirect_urls(exchange.urls["api"], base_url)
    return exchange


def redirect_urls(urls: Any, base_url: str) -> Any:
    """Return the exchange's API URL tree with every host replaced by `base_url` (ws entries as ws/wss)."""
    if isinstance(urls, dict):
        return {key: redirect_urls(value, base_url) for key, value in urls.items()}
    if isinstance(urls, list):
        return [redirect_urls(value, base_url) for value in urls]
    if isinstance(urls, str) and HOST.match(urls):
        target = base_url
        if urls.lower().startswith("ws"):
            target = re.sub(r"^http", "ws", base_url, flags=re.IGNORECASE)
        return HOST.sub(target, urls, count=1)
    return urls


async def daily_candles(exchange: Any, exchange_id: str, source: str, cursor: int | None, limit: int, today_ms: int,
                        listing_unknown: bool, who: str) -> tuple[list[list[Any]], list[list[Any]]]:
    """Fetch daily candles of `source` from `cursor` (ms; None: the newest) up to today, page by page.

    Return them and the first page as served (whose length tells a truncated history). Where the listing is
    unknown, empty pages before today are looked past: the market was listed later.
    """
    candles: list[list[Any]] = []
    first_page: list[list[Any]] | None = None
    for _ in range(MAX_PAGES):
        page = await exchange.fetch_ohlcv(source, "1d", since=cursor, limit=limit)
        if not isinstance(page, list) or any(
            not isinstance(c, list) or len(c) < 6 or not isinstance(c[0], int) or c[0] % DAY_MS for c in page
        ):
            # ccxt hands back what it could not parse as JSON; daily candles open on a UTC midnight.
            raise ValueError(f"{exchange_id} sent a malformed answer: not daily candles")
        if first_page is None:
            first_page = page
        if cursor is not None:
            page = [c for c in page if c[0] >= cursor]
        if candles:
            page = [c for c in page if c[0] > candles[-1][0]]
        if not page:
            if listing_unknown and not candles and cursor is not None and cursor < today_ms - EMPTY_STEP_MS:
                cursor += EMPTY_STEP_MS  # nothing yet: the market was listed later
                continue
            break
        candles.extend(page)
        if page[-1][0] >= today_ms:
            break
        cursor = page[-1][0] + DAY_MS
    else:
        log.warning("%s: stopped paging after %d pages", who, MAX_PAGES)
    return candles, first_page or []


def number(value: Any) -> float:
    """Return a ccxt value as a float, NaN where it is missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def ticker_price(ticker: Mapping[str, Any]) -> float:
    """Return a ccxt ticker's last price (its close where an exchange gives no last), NaN when it has neither."""
    return number(ticker.get("last") if ticker.get("last") is not None else ticker.get("close"))


def describe(exc: BaseException) -> str:
    """Turn a ccxt (or timeout) exception into a one-line reason, without the request URL's query."""
    import ccxt

    if isinstance(exc, (asyncio.TimeoutError, ccxt.RequestTimeout)):
        return "the exchange did not answer in time"
    if isinstance(exc, ccxt.DDoSProtection):
        return f"rate limited by the exchange ({type(exc).__name__})"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, ccxt.BadResponse) or "JSON" in text or "json" in text or "malformed" in text:
        return f"the exchange sent a malformed answer ({type(exc).__name__})"
    if isinstance(exc, ccxt.ExchangeNotAvailable):
        return f"the exchange is unavailable ({text[:160]})"
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def retry_after(exchange: Any, exc: BaseException) -> float | None:
    """Return the Retry-After seconds of a rate-limited request (None when there is none)."""
    import ccxt

    if isinstance(exc, ccxt.DDoSProtection) and exchange is not None:
        # ccxt keeps the headers of the response it just handled; a 429's Retry-After is among them.
        return retry_after_seconds(getattr(exchange, "last_response_headers", None)) or None
    return None
