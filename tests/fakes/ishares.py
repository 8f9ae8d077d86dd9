"""A fake iShares site on 127.0.0.1: the fund holdings CSV, its preamble carrying shares outstanding."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from aiohttp import web

from tests.fakes.server import FakeServer

HOLDINGS_HEADER = ("Ticker,Name,Sector,Asset Class,Market Value,Weight (%),Notional Value,Quantity,Price,Location,"
                   "Exchange,Currency,FX Rate,Market Currency,Accrual Date")
DISCLAIMER = ('"The content contained herein is owned or licensed by BlackRock and/or its third-party information '
              'providers and is protected by applicable copyrights, trademarks, service marks, and/or other '
              'intellectual property rights."')


@dataclass(frozen=True)
class Holding:
    """One row of a fund's holdings file."""

    ticker: str
    weight_pct: float
    name: str = ""
    asset_class: str = "Equity"
    sector: str = "Industrials"

    def row(self) -> str:
        """Render the row as iShares writes it: every field quoted, thousands separated."""
        market_value = self.weight_pct * 700_000_000
        fields = [self.ticker, self.name or f"{self.ticker} INC", self.sector, self.asset_class,
                  f"{market_value:,.2f}", f"{self.weight_pct:.2f}", f"{market_value:,.2f}", "1,000.00", "10.00",
                  "United States", "NASDAQ", "USD", "1.00", "USD", "-"]
        return ",".join(f'"{field}"' for field in fields)


def cash_and_futures() -> list[Holding]:
    """Return the non-equity rows a real Russell 2000 fund file carries: cash, futures, margin."""
    return [
        Holding("XTSLA", 0.35, "BLK CSH FND TREASURY SL AGENCY", "Money Market", "Cash and/or Derivatives"),
        Holding("USD", 0.05, "USD CASH", "Cash", "Cash and/or Derivatives"),
        Holding("RTYZ6", 0.0, "RUSSELL 2000 EMINI CME DEC 26", "Futures", "Cash and/or Derivatives"),
        Holding("MARGIN_USD", 0.01, "FUTURES USD MARGIN BALANCE", "Cash Collateral and Margins",
                "Cash and/or Derivatives"),
    ]


class FakeIShares(FakeServer):
    """Serve `/us/products/.../1467271812596.ajax?fileType=csv&fileName=<FUND>_holdings&dataType=fund`."""

    name = "fake iShares"
    shutdown_seconds = 0.5

    def __init__(self) -> None:
        super().__init__()
        self.funds: dict[str, tuple[date, float, float | None]] = {}  # fund -> (as of, shares, nav)
        self.holdings_of: dict[str, list[Holding]] = {}  # fund -> its rows (default: one equity row)
        self.status = 200
        self.requests = 0

    def publish(self, fund: str, as_of: date, shares: float, nav: float | None = None) -> None:
        """Set what the fund's file says today."""
        self.funds[fund] = (as_of, shares, nav)

    def publish_holdings(self, fund: str, as_of: date, holdings: list[Holding]) -> None:
        """Set the fund's member rows (and its as-of date)."""
        if fund not in self.funds:
            self.funds[fund] = (as_of, 100_000_000.0, None)
        else:
            _, shares, nav = self.funds[fund]
            self.funds[fund] = (as_of, shares, nav)
        self.holdings_of[fund] = list(holdings)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/us/products/{product}/{slug}/{name}", self.holdings)

    async def holdings(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.status != 200:
            return web.Response(status=self.status, text="<html>Service Unavailable</html>", content_type="text/html")
        fund = request.query.get("fileName", "").split("_")[0]
        if fund not in self.funds:
            return web.Response(status=404, text="<html>Not Found</html>", content_type="text/html")
        as_of, shares, nav = self.funds[fund]
        lines = [
            "\ufeffiShares Russell 2000 ETF",
            f'Fund Holdings as of,"{as_of.strftime("%b %d, %Y")}"',
            'Inception Date,"May 22, 2000"',
            f'Shares Outstanding,"{shares:,.2f}"',
        ]
        if nav is not None:
            lines.append(f'NAV,"{nav:.2f}"')
        lines += ['Stock,"-"', 'Bond,"-"', 'Cash,"-"', 'Other,"-"', "\xa0", HOLDINGS_HEADER]
        rows = self.holdings_of.get(fund)
        if rows is None:
            lines.append('"CRDO","CREDO TECHNOLOGY GROUP HOLDING LT","Information Technology","Equity","1,000.00","0.80"')
        else:
            lines += [holding.row() for holding in rows]
        lines += ["\xa0", DISCLAIMER]
        return web.Response(text="\n".join(lines), content_type="text/csv")
