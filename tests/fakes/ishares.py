"""A fake iShares site on 127.0.0.1: the fund holdings CSV whose header carries shares outstanding."""

from __future__ import annotations

from datetime import date

from aiohttp import web
from tests.fakes import serve_on_loopback


class FakeIShares:
    """Serve `/us/products/.../1467271812596.ajax?fileType=csv&fileName=<FUND>_holdings&dataType=fund`."""

    def __init__(self) -> None:
        self.funds: dict[str, tuple[date, float, float | None]] = {}  # fund -> (as of, shares, nav)
        self.status = 200
        self.requests = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    def publish(self, fund: str, as_of: date, shares: float, nav: float | None = None) -> None:
        """Set what the fund's file says today."""
        self.funds[fund] = (as_of, shares, nav)

    async def start(self) -> str:
        """Start listening on 127.0.0.1; return the base URL."""
        app = web.Application()
        app.router.add_get("/us/products/{product}/{slug}/{name}", self.holdings)
        self.runner, port = await serve_on_loopback(app, shutdown_timeout=0.5)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        """Stop the server."""
        if self.runner:
            await self.runner.cleanup()

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
        lines += ['Stock,"-"', 'Bond,"-"', 'Cash,"-"', 'Other,"-"', "\xa0",
                  "Ticker,Name,Sector,Asset Class,Market Value,Weight (%),Notional Value,Quantity,Price",
                  '"CRDO","CREDO TECHNOLOGY GROUP HOLDING LT","Information Technology","Equity","1,000.00","0.80"']
        return web.Response(text="\n".join(lines), content_type="text/csv")
