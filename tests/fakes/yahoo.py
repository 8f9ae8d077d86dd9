"""A fake Yahoo Finance on 127.0.0.1: cookie, crumb, v8 chart and fundamentals-timeseries, with injectable faults."""

from __future__ import annotations

import asyncio
import csv
import json
import math
import time as time_module
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from tests.fakes.server import FakeServer, Fault

NEW_YORK = "America/New_York"


@dataclass
class DailyRow:
    """One daily OHLCV row as a CSV (or a test) gives it."""

    day: date
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: float | None = 0


def read_csv_rows(path: str | Path, until: date | None = None, last: int | None = None) -> list[DailyRow]:
    """Read `date,open,high,low,close,volume` rows, optionally up to a date and only the last N."""
    rows = []
    with open(path, newline="") as handle:
        for record in csv.DictReader(handle):
            day = date.fromisoformat(record["date"])
            if until is not None and day > until:
                break
            rows.append(DailyRow(day, float(record["open"]), float(record["high"]), float(record["low"]),
                                 float(record["close"]), float(record["volume"] or 0)))
    return rows[-last:] if last else rows


@dataclass
class Instrument:
    """What the fake serves for one Yahoo symbol."""

    symbol: str
    rows: list[DailyRow]
    timezone: str = NEW_YORK
    instrument_type: str = "INDEX"
    forming: DailyRow | None = None  # today's row while the session is open
    shares: list[tuple[date, float]] = field(default_factory=list)  # fundamentals-timeseries shares_out

    def open_epoch(self, day: date) -> int:
        """Return the epoch Yahoo stamps a daily row with: the session open (09:30 local) or midnight UTC."""
        if self.timezone == "UTC":
            return int(datetime.combine(day, time(0), timezone.utc).timestamp())
        return int(datetime.combine(day, time(9, 30), ZoneInfo(self.timezone)).timestamp())


@dataclass
class Earnings:
    """What the fake's fundamentals-timeseries knows of one company's net income (USD)."""

    trailing: list[tuple[date, float]] = field(default_factory=list)  # (asOfDate, trailing-12-month net income)
    quarterly: list[tuple[date, float]] = field(default_factory=list)  # (quarter end, that quarter's net income)
    delisted: bool = False  # Yahoo answers 404 with its `finance` error envelope


# Chart answers without bars, by fault kind: an empty list, null, and a result with neither meta nor quotes.
EMPTY_CHARTS: dict[str, Any] = {"empty": [], "null": None, "hollow": [{}]}


class FakeYahoo(FakeServer):
    """Serve Yahoo's chart and fundamentals endpoints from rows built from real CSVs."""

    name = "fake Yahoo"
    shutdown_seconds = 0.5

    def __init__(self, latency: float = 0.0, hang_seconds: float = 5.0) -> None:
        super().__init__()
        self.hang_seconds = hang_seconds
        self.instruments: dict[str, Instrument] = {}
        self.earnings: dict[str, Earnings] = {}
        self.limited_until = 0.0  # monotonic time before which every income request answers 429
        self.limit_retry_after: float | None = None
        self.limited: list[float] = []  # when each 429 was answered (monotonic)
        self.income_times: list[float] = []  # when each income request arrived (monotonic)
        self.latency = latency
        self.requests: list[tuple[str, dict[str, str]]] = []

    # --- test controls -------------------------------------------------------------------------
    def add(self, instrument: Instrument) -> Instrument:
        """Serve an instrument."""
        self.instruments[instrument.symbol] = instrument
        return instrument

    def fail(self, symbol: str, kind: str, times: int = 1, status: int = 500, retry_after: float | None = None) -> None:
        """Make the next `times` chart requests of `symbol` (every symbol: '*') fail in the given way.

        Kinds: status, malformed, empty (result []), null (result null), hollow (result [{}]), timeout. The key
        'shares:SYMBOL' or 'income:SYMBOL' fails that symbol's fundamentals requests instead.
        """
        self.faults.add(symbol, Fault(kind, times, status, retry_after))

    def publish_earnings(self, symbol: str, trailing: list[tuple[date, float]] | None = None,
                         quarterly: list[tuple[date, float]] | None = None) -> Earnings:
        """Serve a company's trailing and quarterly net income."""
        self.earnings[symbol] = Earnings(list(trailing or []), list(quarterly or []))
        return self.earnings[symbol]

    def rate_limit(self, seconds: float, retry_after: float | None) -> None:
        """Answer every income request of the next `seconds` with 429 and this Retry-After."""
        self.limited_until = time_module.monotonic() + seconds
        self.limit_retry_after = retry_after

    def delist(self, symbol: str) -> None:
        """Make Yahoo forget a company from now on (its fundamentals answer 404)."""
        self.earnings.setdefault(symbol, Earnings()).delisted = True

    def income_requests(self, symbol: str | None = None) -> list[dict[str, str]]:
        """Return the query of every income-statement request (of one symbol)."""
        return [q for path, q in self.requests if "type" in q and path.startswith("/ws/fundamentals-timeseries/")
                and (symbol is None or path.endswith("/" + symbol))]

    def chart_requests(self, symbol: str | None = None) -> list[dict[str, str]]:
        """Return the query of every chart request (of one symbol)."""
        return [q for path, q in self.requests
                if path.startswith("/v8/finance/chart/") and (symbol is None or path.endswith("/" + symbol))]

    # --- server --------------------------------------------------------------------------------
    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/", self.cookie)
        router.add_get("/v1/test/getcrumb", self.crumb)
        router.add_get("/consent", self.consent)
        router.add_get("/v8/finance/chart/{symbol}", self.chart)
        router.add_get("/ws/fundamentals-timeseries/v1/finance/timeseries/{symbol}", self.timeseries)

    async def _enter(self, request: web.Request) -> None:
        self.requests.append((request.path, dict(request.query)))
        if self.latency:
            await asyncio.sleep(self.latency)

    async def cookie(self, request: web.Request) -> web.Response:
        await self._enter(request)
        response = web.Response(status=404, text="<html>not found</html>", content_type="text/html")
        response.set_cookie("A3", "d=fake&S=fake", max_age=31536000)
        return response

    async def crumb(self, request: web.Request) -> web.Response:
        await self._enter(request)
        return web.Response(text="fakecrumb0", content_type="text/plain")

    async def consent(self, request: web.Request) -> web.Response:
        await self._enter(request)
        return web.Response(status=404, text="<html>no consent form</html>", content_type="text/html")

    async def chart(self, request: web.Request) -> web.StreamResponse:
        await self._enter(request)
        symbol = request.match_info["symbol"]
        fault = self.faults.take(symbol)
        if fault is not None:
            if fault.kind == "status":
                return _status_answer(fault)
            if fault.kind == "malformed":
                return web.Response(text='{"chart": {"result": [{"meta": ', content_type="application/json")
            if fault.kind == "timeout":
                await asyncio.sleep(self.hang_seconds)
            if fault.kind in EMPTY_CHARTS:
                return web.json_response({"chart": {"result": EMPTY_CHARTS[fault.kind], "error": None}})
        instrument = self.instruments.get(symbol)
        if instrument is None:
            return web.json_response(
                {"chart": {"result": None, "error": {"code": "Not Found",
                                                     "description": "No data found, symbol may be delisted"}}},
                status=404,
            )
        query = request.query
        rows = list(instrument.rows)
        if instrument.forming is not None:
            rows.append(instrument.forming)
        stamped = [(instrument.open_epoch(r.day), r) for r in rows]
        range_ = query.get("range")
        if range_ == "1d":
            stamped = stamped[-1:]
        elif range_ == "5d":
            stamped = stamped[-5:]
        elif "period1" in query:
            start, end = int(query["period1"]), int(query.get("period2", 2**40))
            stamped = [(t, r) for t, r in stamped if start <= t < end]
        return web.json_response(self._chart_body(instrument, stamped, range_ or ""))

    def _chart_body(self, instrument: Instrument, stamped: list[tuple[int, DailyRow]], range_: str) -> dict[str, Any]:
        def num(value: float | None) -> float | None:
            return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

        last = stamped[-1][1] if stamped else (instrument.rows[-1] if instrument.rows else None)
        zone = ZoneInfo(instrument.timezone)
        today = last.day if last else date(2026, 1, 1)
        day_start = int(datetime.combine(today, time(9, 30), zone).timestamp())
        day_end = int(datetime.combine(today, time(16, 0), zone).timestamp())
        offset = int(datetime.combine(today, time(12), zone).utcoffset().total_seconds())  # type: ignore[union-attr]
        period = {"timezone": "EDT", "start": day_start, "end": day_end, "gmtoffset": offset}
        meta = {
            "currency": "USD", "symbol": instrument.symbol, "exchangeName": "WCB", "fullExchangeName": "Cboe Indices",
            "instrumentType": instrument.instrument_type,
            "firstTradeDate": instrument.open_epoch(instrument.rows[0].day) if instrument.rows else None,
            "regularMarketTime": stamped[-1][0] if stamped else day_start, "hasPrePostMarketData": False,
            "gmtoffset": offset, "timezone": "EDT", "exchangeTimezoneName": instrument.timezone,
            "regularMarketPrice": num(last.close) if last else None,
            "chartPreviousClose": num(instrument.rows[-2].close) if len(instrument.rows) > 1 else None,
            "priceHint": 2,
            "currentTradingPeriod": {"pre": dict(period), "regular": dict(period), "post": dict(period)},
            "dataGranularity": "1d", "range": range_,
            "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
        }
        quote = {
            "open": [num(r.open) for _, r in stamped], "high": [num(r.high) for _, r in stamped],
            "low": [num(r.low) for _, r in stamped], "close": [num(r.close) for _, r in stamped],
            "volume": [None if r.volume is None else int(r.volume) for _, r in stamped],
        }
        result: dict[str, Any] = {"meta": meta, "timestamp": [t for t, _ in stamped],
                                  "indicators": {"quote": [quote], "adjclose": [{"adjclose": quote["close"]}]}}
        if not stamped:
            result = {"meta": meta, "indicators": {"quote": [{}], "adjclose": [{}]}}
        return {"chart": {"result": [result], "error": None}}

    async def timeseries(self, request: web.Request) -> web.Response:
        await self._enter(request)
        symbol = request.match_info["symbol"]
        if "type" in request.query:
            return self._income(symbol, request.query)
        fault = self.faults.take("shares:" + symbol)
        if fault is not None and fault.kind == "status":
            return web.Response(status=fault.status, text="Bad Gateway")
        instrument = self.instruments.get(symbol)
        start, end = int(request.query.get("period1", 0)), int(request.query.get("period2", 2**40))
        points = []
        for day, shares in (instrument.shares if instrument else []):
            stamp = int(datetime.combine(day, time(0), timezone.utc).timestamp()) + 3600 * 13
            if start <= stamp < end:
                points.append((stamp, shares))
        if not points:
            return web.json_response({"timeseries": {"result": [{"meta": {"symbol": [symbol], "type": ["shares_out"]}}],
                                                     "error": None}})
        body = {"timeseries": {"result": [{
            "meta": {"symbol": [symbol], "type": ["shares_out"]},
            "timestamp": [t for t, _ in points],
            "shares_out": [v for _, v in points],
        }], "error": None}}
        return web.Response(text=json.dumps(body), content_type="application/json")

    def _income(self, symbol: str, query: Any) -> web.Response:
        """Answer an income-statement request as Yahoo does: one result entry per requested type that has data."""
        arrived = time_module.monotonic()
        self.income_times.append(arrived)
        if arrived < self.limited_until:
            self.limited.append(arrived)
            headers = {"Retry-After": f"{self.limit_retry_after:g}"} if self.limit_retry_after is not None else {}
            return web.Response(status=429, text="Too Many Requests", headers=headers, content_type="text/html")
        fault = self.faults.take("income:" + symbol)
        if fault is not None:
            if fault.kind == "status":
                return _status_answer(fault)
            if fault.kind == "malformed":
                return web.Response(text='{"timeseries": {"result": [{"meta": ', content_type="application/json")
        earnings = self.earnings.get(symbol)
        if earnings is not None and earnings.delisted:
            body = {"finance": {"result": None, "error": {"code": "Not Found",
                                                          "description": f"Quote not found for symbol: {symbol}"}}}
            return web.Response(status=404, text=json.dumps(body), content_type="application/json")
        start, end = int(query.get("period1", 0)), int(query.get("period2", 2**40))
        result = []
        for kind in query["type"].split(","):
            series = self._income_series(earnings, kind)
            points = [(day, value) for day, value in series if start <= _epoch(day) < end]
            if not points:
                continue
            period = "TTM" if kind.startswith("trailing") else "3M" if kind.startswith("quarterly") else "12M"
            result.append({
                "meta": {"symbol": [symbol], "type": [kind]},
                "timestamp": [_epoch(day) for day, _ in points],
                kind: [{"dataId": 20191, "asOfDate": day.isoformat(), "periodType": period, "currencyCode": "USD",
                        "reportedValue": {"raw": value, "fmt": f"{value / 1e6:.2f}M"}} for day, value in points],
            })
        return web.Response(text=json.dumps({"timeseries": {"result": result, "error": None}}),
                            content_type="application/json")

    @staticmethod
    def _income_series(earnings: Earnings | None, kind: str) -> list[tuple[date, float]]:
        """Return the points of one requested type: net income, plus revenue and common-holder income beside it."""
        if earnings is None:
            return []
        for prefix, series in (("trailing", earnings.trailing), ("quarterly", earnings.quarterly)):
            if not kind.startswith(prefix):
                continue
            name = kind[len(prefix):]
            if name == "NetIncome":
                return series
            if name == "NetIncomeCommonStockholders":
                return [(day, value - 1_000_000.0) for day, value in series]
            if name == "TotalRevenue":
                return [(day, abs(value) * 10 + 5_000_000.0) for day, value in series]
        return []


def _epoch(day: date) -> int:
    """Return the timestamp Yahoo's fundamentals give a date: midnight UTC."""
    return int(datetime.combine(day, time(0), timezone.utc).timestamp())


def session_day(day: date) -> datetime:
    """Return the UTC midnight riskon stamps a daily bar of `day` with."""
    return datetime.combine(day, time(0), timezone.utc)


def next_day(day: date) -> date:
    """Return the next calendar day."""
    return day + timedelta(days=1)


def _status_answer(fault: Fault) -> web.Response:
    """Answer as Yahoo's edge does with an error status: an HTML page, with Retry-After on a 429 when set."""
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
    text = "Too Many Requests" if fault.status == 429 else "<html><body>Bad Gateway</body></html>"
    return web.Response(status=fault.status, text=text, headers=headers, content_type="text/html")
