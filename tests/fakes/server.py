"""The plumbing every fake service shares: serve on 127.0.0.1, stop, queued faults and bounded waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Self

from aiohttp import web

ANY = "*"  # the fault key that matches every request


@dataclass
class Fault:
    """An injected failure for the next `times` matching requests: its kind, HTTP status and Retry-After."""

    kind: str
    times: int = 1
    status: int = 500
    retry_after: float | None = None


class Faults:
    """Failures queued by key (a symbol, a path, a chat or channel id; ANY for every request), met in order."""

    def __init__(self) -> None:
        self._queued: dict[Hashable, list[Fault]] = {}

    def add(self, key: Hashable, fault: Fault) -> None:
        """Queue a failure behind those already waiting for `key`."""
        self._queued.setdefault(key, []).append(fault)

    def take(self, *keys: Hashable) -> Fault | None:
        """Return the failure due for the first of `keys` (then ANY) that has one, counting it met; else None."""
        for key in (*keys, ANY):
            queue = self._queued.get(key)
            if not queue:
                continue
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault
        return None

    def pending(self, key: Hashable | None = None) -> int:
        """Return how many failures are still to be met (for one key, or for all)."""
        queues = self._queued.values() if key is None else [self._queued.get(key, [])]
        return sum(fault.times for queue in queues for fault in queue)


class FakeServer:
    """Serve a fake service's aiohttp routes on 127.0.0.1; a subclass adds its routes and what it closes first."""

    name = "fake server"
    max_request_bytes = 1024**2  # aiohttp's default; services that take uploads raise it
    # How long in-flight answers may finish once the fake stops: aiohttp's default, or half a second for fakes
    # whose injected hangs would otherwise hold a test's teardown.
    shutdown_seconds = 60.0

    def __init__(self) -> None:
        self.faults = Faults()
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Return the base URL the fake listens on."""
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Add the service's routes."""
        raise NotImplementedError

    async def start(self, port: int = 0) -> Self:
        """Listen on 127.0.0.1, on a free port unless one is given (a restarted fake keeps its old one)."""
        app = web.Application(client_max_size=self.max_request_bytes)
        self.add_routes(app.router)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.shutdown_seconds)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        self._runner = runner
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        """Close what the service holds open (long polls, websockets), then stop listening."""
        await self.closing()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def closing(self) -> None:
        """Release what would keep the server from stopping; nothing by default."""

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        """Wait (bounded) until `condition()` holds; fail the test with a clear message otherwise."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: condition not met within {timeout} s")
            await asyncio.sleep(0.02)
