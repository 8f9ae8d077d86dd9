"""Fake kraken and binance on 127.0.0.1: REST markets, daily OHLCV, tickers, and binance's websocket tickers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.server import FakeServer, Fault
from tests.fakes.yahoo import DailyRow

DAY_MS = 86_400_000


def day_ms(day: date) -> int:
    """Return the epoch milliseconds of a UTC day's midnight."""
    return int(datetime.combine(day, time(0), timezone.utc).timestamp() * 1000)


@dataclass
class Market:
    """One spot market the fake serves: daily rows (real CSV), today's forming row, and its names."""

    symbol: str  # unified, e.g. BTC/USD
    rows: list[DailyRow]
    forming: DailyRow | None = None

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1]

    def all_rows(self) -> list[DailyRow]:
        return self.rows + ([self.forming] if self.forming is not None else [])

    def last_row(self) -> DailyRow:
        return self.all_rows()[-1]


def _text(value: float | None) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return f"{value:.10g}"


class FakeExchange(FakeServer):
    """Speak kraken's or binance's public REST API (and binance's ticker websocket) from CSV rows."""

    shutdown_seconds = 0.5

    # kraken's OHLC endpoint serves only the newest 720 candles, whatever `since` asks for.
    KRAKEN_OHLC_WINDOW = 720
    BINANCE_KLINES_MAX = 1000

    def __init__(self, kind: str, latency: float = 0.0, hang_seconds: float = 5.0) -> None:
        if kind not in ("kraken", "binance"):
            raise ValueError(f"unknown fake exchange {kind}")
        super().__init__()
        self.name = f"fake {kind}"
        self.kind = kind
        self.latency = latency
        self.hang_seconds = hang_seconds
        self.markets: dict[str, Market] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._together = 0  # answer nothing until this many requests are in flight at once (answer_together)
        self._all_in = asyncio.Event()
        self.ws_enabled = True
        self.ws_interval = 0.05
        self.ws_silent = False  # keep sockets open but send no ticker (a connected, silent stream)
        self.ws_subscriptions: list[str] = []
        self._sockets: set[web.WebSocketResponse] = set()

    # --- test controls -------------------------------------------------------------------------
    def add(self, market: Market) -> Market:
        """Serve a market."""
        self.markets[market.symbol] = market
        return market

    def fail(self, key: str, kind: str, times: int = 1, status: int = 500, retry_after: float | None = None) -> None:
        """Fail the next `times` requests to path `key`, naming market id `key`, or any ('*').

        Kinds: status, malformed, empty, timeout.
        """
        self.faults.add(key, Fault(kind, times, status, retry_after))

    def count(self, path: str) -> int:
        """Return how many requests hit a path."""
        return sum(1 for p, _ in self.requests if p == path)

    async def drop_websockets(self) -> None:
        """Close every open websocket (the server side of a dropped connection)."""
        for socket in list(self._sockets):
            await socket.close()

    # --- names ---------------------------------------------------------------------------------
    def market_id(self, market: Market) -> str:
        if self.kind == "binance":
            return market.base + market.quote
        if market.base in ("BTC", "ETH") and market.quote in ("USD", "EUR"):
            return f"X{'XBT' if market.base == 'BTC' else 'ETH'}Z{market.quote}"
        return market.base + market.quote

    def _by_id(self, market_id: str) -> Market | None:
        for market in self.markets.values():
            if self.market_id(market) == market_id or (self.kind == "kraken" and self._altname(market) == market_id):
                return market
        return None

    def _altname(self, market: Market) -> str:
        return ("XBT" if market.base == "BTC" else market.base) + market.quote

    # --- server --------------------------------------------------------------------------------
    def add_routes(self, router: web.UrlDispatcher) -> None:
        if self.kind == "kraken":
            router.add_get("/0/public/AssetPairs", self.kraken_pairs)
            router.add_get("/0/public/Assets", self.kraken_assets)
            router.add_get("/0/public/OHLC", self.kraken_ohlc)
            router.add_get("/0/public/Ticker", self.kraken_ticker)
            router.add_get("/0/public/Time", self.kraken_time)
        else:
            router.add_get("/api/v3/exchangeInfo", self.binance_info)
            router.add_get("/api/v3/klines", self.binance_klines)
            router.add_get("/api/v3/ticker/24hr", self.binance_ticker)
            router.add_get("/api/v3/time", self.binance_time)
            router.add_get("/ws", self.binance_ws)
            router.add_get("/ws/{index}", self.binance_ws)

    async def closing(self) -> None:
        await self.drop_websockets()

    def answer_together(self, requests: int) -> None:
        """Hold every answer until `requests` requests are in flight at once (at most 5 s): a client that sends
        them one after another is caught by `max_in_flight`, whatever the machine's load."""
        self._together = requests
        self._all_in.clear()
        self.max_in_flight = 0

    async def _enter(self, request: web.Request, market_ids: list[str] = ()) -> web.Response | None:
        """Log the request, add latency, and answer an injected fault if one is due."""
        self.requests.append((request.path, dict(request.query)))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self._together:
                if self.in_flight >= self._together:
                    self._all_in.set()
                with contextlib.suppress(TimeoutError):  # bounded: a serial client gets its answers, late
                    await asyncio.wait_for(self._all_in.wait(), 5.0)
            if self.latency:
                await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        fault = self.faults.take(request.path, *market_ids)
        return None if fault is None else await self._fault_response(fault)

    async def _fault_response(self, fault: Fault) -> web.Response:
        if fault.kind == "timeout":
            await asyncio.sleep(self.hang_seconds)
            return web.Response(status=504, text="late")
        if fault.kind == "malformed":
            return web.Response(text='{"result": {"XXBTZUSD": [[1, "2"', content_type="application/json")
        if fault.kind == "empty":
            if self.kind == "kraken":
                return web.json_response({"error": [], "result": {"last": 0}})
            return web.json_response([])
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        if fault.status == 429:
            if self.kind == "binance":
                body = {"code": -1003, "msg": "Too many requests; current limit is 6000 request weight per 1 MINUTE."}
                return web.json_response(body, status=429, headers=headers)
            return web.json_response({"error": ["EAPI:Rate limit exceeded"]}, status=429, headers=headers)
        return web.Response(status=fault.status, text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                            headers=headers, content_type="text/html")

    # --- kraken --------------------------------------------------------------------------------
    def _kraken_asset(self, code: str) -> str:
        return {"BTC": "XXBT", "ETH": "XETH", "USD": "ZUSD", "EUR": "ZEUR"}.get(code, code)

    async def kraken_time(self, request: web.Request) -> web.Response:
        failed = await self._enter(request)
        return failed or web.json_response({"error": [], "result": {"unixtime": 0, "rfc1123": ""}})

    async def kraken_assets(self, request: web.Request) -> web.Response:
        failed = await self._enter(request)
        if failed:
            return failed
        codes = {c for m in self.markets.values() for c in (m.base, m.quote)}
        result = {
            self._kraken_asset(c): {"aclass": "currency", "altname": "XBT" if c == "BTC" else c, "decimals": 10,
                                    "display_decimals": 5, "collateral_value": 1.0, "status": "enabled"}
            for c in sorted(codes)
        }
        return web.json_response({"error": [], "result": result})

    async def kraken_pairs(self, request: web.Request) -> web.Response:
        failed = await self._enter(request)
        if failed:
            return failed
        result = {}
        for market in self.markets.values():
            base, quote = self._kraken_asset(market.base), self._kraken_asset(market.quote)
            result[self.market_id(market)] = {
                "altname": self._altname(market), "wsname": f"{'XBT' if market.base == 'BTC' else market.base}/"
                f"{market.quote}", "aclass_base": "currency", "base": base, "aclass_quote": "currency",
                "quote": quote, "lot": "unit", "cost_decimals": 5, "pair_decimals": 5, "lot_decimals": 8,
                "lot_multiplier": 1, "leverage_buy": [], "leverage_sell": [],
                "fees": [[0, 0.4], [10000, 0.35]], "fees_maker": [[0, 0.25], [10000, 0.2]],
                "fee_volume_currency": "ZUSD", "margin_call": 80, "margin_stop": 40, "ordermin": "0.0001",
                "costmin": "0.5", "tick_size": "0.00001", "status": "online",
            }
        return web.json_response({"error": [], "result": result})

    async def kraken_ohlc(self, request: web.Request) -> web.Response:
        pair = request.query.get("pair", "")
        failed = await self._enter(request, [pair])
        if failed:
            return failed
        market = self._by_id(pair)
        if market is None:
            return web.json_response({"error": ["EQuery:Unknown asset pair"]})
        since = int(request.query.get("since", "0") or 0)
        rows = market.all_rows()[-self.KRAKEN_OHLC_WINDOW:]
        candles = [
            [day_ms(r.day) // 1000, _text(r.open), _text(r.high), _text(r.low), _text(r.close), _text(r.close),
             _text(r.volume or 0), 100]
            for r in rows if day_ms(r.day) // 1000 > since
        ]
        last = candles[-1][0] if candles else since
        return web.json_response({"error": [], "result": {self.market_id(market): candles, "last": last}})

    async def kraken_ticker(self, request: web.Request) -> web.Response:
        pairs = [p for p in request.query.get("pair", "").split(",") if p]
        failed = await self._enter(request, pairs)
        if failed:
            return failed
        result = {}
        for pair in pairs:
            market = self._by_id(pair)
            if market is None:
                return web.json_response({"error": ["EQuery:Unknown asset pair"]})
            row = market.last_row()
            last = _text(row.close)
            result[self.market_id(market)] = {
                "a": [last, "1", "1.000"], "b": [last, "1", "1.000"], "c": [last, "0.001"],
                "v": [_text(row.volume or 0), _text(row.volume or 0)], "p": [last, last], "t": [10, 10],
                "l": [_text(row.low), _text(row.low)], "h": [_text(row.high), _text(row.high)], "o": _text(row.open),
            }
        return web.json_response({"error": [], "result": result})

    # --- binance -------------------------------------------------------------------------------
    async def binance_time(self, request: web.Request) -> web.Response:
        failed = await self._enter(request)
        return failed or web.json_response({"serverTime": 0})

    async def binance_info(self, request: web.Request) -> web.Response:
        failed = await self._enter(request)
        if failed:
            return failed
        symbols = []
        for market in self.markets.values():
            symbols.append({
                "symbol": self.market_id(market), "status": "TRADING", "baseAsset": market.base,
                "baseAssetPrecision": 8, "quoteAsset": market.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True, "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": True, "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "0.00000100", "maxPrice": "1000000.00000000",
                     "tickSize": "0.00000100"},
                    {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
                     "stepSize": "0.00001000"},
                ],
                "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            })
        return web.json_response({"timezone": "UTC", "serverTime": 0, "rateLimits": [], "exchangeFilters": [],
                                  "symbols": symbols})

    async def binance_klines(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "")
        failed = await self._enter(request, [symbol])
        if failed:
            return failed
        market = self._by_id(symbol)
        if market is None:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        start = int(request.query.get("startTime", "0"))
        end = int(request.query.get("endTime", str(2**62)))
        limit = min(int(request.query.get("limit", "500")), self.BINANCE_KLINES_MAX)
        rows = [r for r in market.all_rows() if start <= day_ms(r.day) <= end]
        if "startTime" not in request.query:
            rows = rows[-limit:]
        rows = rows[:limit]
        body = [
            [day_ms(r.day), _text(r.open), _text(r.high), _text(r.low), _text(r.close), _text(r.volume or 0),
             day_ms(r.day) + DAY_MS - 1, "0", 100, "0", "0", "0"]
            for r in rows
        ]
        return web.Response(text=json.dumps(body), content_type="application/json")

    def _binance_ticker(self, market: Market) -> dict[str, Any]:
        row = market.last_row()
        return {
            "symbol": self.market_id(market), "priceChange": "0", "priceChangePercent": "0",
            "weightedAvgPrice": _text(row.close), "prevClosePrice": _text(market.rows[-1].close if market.rows else
                                                                          row.open),
            "lastPrice": _text(row.close), "lastQty": "0.1", "bidPrice": _text(row.close), "bidQty": "1",
            "askPrice": _text(row.close), "askQty": "1", "openPrice": _text(row.open), "highPrice": _text(row.high),
            "lowPrice": _text(row.low), "volume": _text(row.volume or 0), "quoteVolume": "0",
            "openTime": day_ms(row.day), "closeTime": day_ms(row.day) + DAY_MS - 1, "firstId": 1, "lastId": 2,
            "count": 2,
        }

    async def binance_ticker(self, request: web.Request) -> web.Response:
        if "symbols" in request.query:
            try:
                ids = json.loads(request.query["symbols"])
            except ValueError:
                return web.json_response({"code": -1100, "msg": "Illegal characters found in parameter 'symbols'"},
                                         status=400)
        elif "symbol" in request.query:
            ids = [request.query["symbol"]]
        else:
            ids = [self.market_id(m) for m in self.markets.values()]
        failed = await self._enter(request, ids)
        if failed:
            return failed
        tickers = []
        for market_id in ids:
            market = self._by_id(market_id)
            if market is None:
                return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
            tickers.append(self._binance_ticker(market))
        body: Any = tickers if "symbols" in request.query or "symbol" not in request.query else tickers[0]
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def binance_ws(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.query)))
        if not self.ws_enabled:
            return web.Response(status=503, text="websocket unavailable")
        socket = web.WebSocketResponse(heartbeat=None)
        await socket.prepare(request)
        self._sockets.add(socket)
        streams: set[str] = set()
        pusher = asyncio.create_task(self._push_tickers(socket, streams))
        try:
            async for message in socket:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    command = json.loads(message.data)
                except ValueError:
                    continue
                if command.get("method") == "SUBSCRIBE":
                    for stream in command.get("params", []):
                        streams.add(stream)
                        self.ws_subscriptions.append(stream)
                    await socket.send_str(json.dumps({"result": None, "id": command.get("id")}))
        finally:
            pusher.cancel()
            self._sockets.discard(socket)
        return socket

    async def _push_tickers(self, socket: web.WebSocketResponse, streams: set[str]) -> None:
        while not socket.closed:
            for stream in list(streams) if not self.ws_silent else []:
                name, _, kind = stream.partition("@")
                market = self._by_id(name.upper())
                if market is None:
                    continue
                row = market.last_row()
                now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
                event = {"e": "24hrMiniTicker" if kind == "miniTicker" else "24hrTicker", "E": now_ms,
                         "s": self.market_id(market), "c": _text(row.close), "o": _text(row.open),
                         "h": _text(row.high), "l": _text(row.low), "v": _text(row.volume or 0), "q": "0"}
                if kind != "miniTicker":
                    event.update({"p": "0", "P": "0", "w": _text(row.close), "x": _text(row.open), "Q": "0.1",
                                  "b": _text(row.close), "B": "1", "a": _text(row.close), "A": "1",
                                  "O": day_ms(row.day), "C": now_ms, "F": 1, "L": 2, "n": 2})
                try:
                    await socket.send_str(json.dumps(event))
                except (ConnectionError, RuntimeError):
                    return
            await asyncio.sleep(self.ws_interval)
