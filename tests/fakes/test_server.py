"""The fakes' shared plumbing: faults met in order and by key, a restart on the same port, bounded waits."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from tests.fakes.server import ANY, FakeServer, Fault, Faults


class Echo(FakeServer):
    """A one-route fake: answers 200, or the status of a queued fault."""

    name = "fake echo"

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/{key}", self.answer)

    async def answer(self, request: web.Request) -> web.Response:
        fault = self.faults.take(request.match_info["key"])
        return web.Response(status=fault.status if fault else 200, text="ok")


def test_faults_are_met_in_order_for_their_key_then_for_any():
    faults = Faults()
    faults.add("IWM", Fault("status", times=2, status=502))
    faults.add("IWM", Fault("malformed"))
    faults.add(ANY, Fault("timeout"))

    assert faults.pending() == 4 and faults.pending("IWM") == 3
    assert [faults.take("IWM").kind for _ in range(3)] == ["status", "status", "malformed"]
    assert faults.take("^RUT").kind == "timeout"  # nothing for ^RUT itself: the one for any request
    assert faults.take("IWM") is None and faults.pending() == 0


async def test_a_fake_answers_on_loopback_restarts_on_its_port_and_stops():
    fake = await Echo().start()
    port = fake.port
    fake.faults.add("a", Fault("status", status=503))
    async with aiohttp.ClientSession() as session:
        async with session.get(fake.url + "/a") as first, session.get(fake.url + "/a") as second:
            assert (first.status, second.status) == (503, 200)
        await fake.stop()
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(fake.url + "/a")
        await fake.start(port=port)
        try:
            async with session.get(f"http://127.0.0.1:{port}/a") as again:
                assert fake.port == port and again.status == 200
        finally:
            await fake.stop()


async def test_wait_until_names_the_fake_when_the_condition_never_holds():
    with pytest.raises(AssertionError, match="fake echo: condition not met within 0.1 s"):
        await Echo().wait_until(lambda: False, timeout=0.1)
