"""Fake services that speak the real wire protocols, served on 127.0.0.1 for the tests."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def serve_on_loopback(app: web.Application, port: int = 0, **runner_options: Any) -> tuple[web.AppRunner, int]:
    """Serve an aiohttp app on 127.0.0.1 (any free port unless one is given); return its runner and port."""
    runner = web.AppRunner(app, access_log=None, **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
