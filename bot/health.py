"""The optional monitoring endpoint: /healthz (ok, or degraded with reasons) and Prometheus /metrics.

Served by aiohttp inside the bot's own asyncio loop, so every figure is read from the running Runtime at the
moment it is asked for (the Store's connection belongs to this thread). Off unless `health.enabled`; bound to
127.0.0.1 unless `health.host` says otherwise. Each server has its own CollectorRegistry, never the global one.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bot.degraded import degraded_reasons  # re-exported: the endpoint and /status give the same reasons
from bot.logs import RedactSecrets
from storage.base import STORE_ERRORS

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


class RuntimeCollector(Collector):
    """Read riskon's figures from a running Runtime each time Prometheus scrapes."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        runtime = self.runtime
        now = runtime.now()
        polls = CounterMetricFamily("riskon_feed_polls", "Polls of each feed since start", labels=["feed"])
        failures = CounterMetricFamily("riskon_feed_poll_failures", "Failed polls of each feed since start",
                                       labels=["feed"])
        in_a_row = GaugeMetricFamily("riskon_feed_failures_in_a_row", "Failed polls of each feed since its last "
                                     "good one", labels=["feed"])
        symbol_errors = GaugeMetricFamily("riskon_feed_symbol_errors", "Symbols a feed could not serve at its last "
                                          "poll", labels=["feed"])
        for name, health in runtime.health.items():
            polls.add_metric([name], getattr(health, "polls", 0))
            failures.add_metric([name], getattr(health, "failed_polls", 0))
            in_a_row.add_metric([name], health.failures)
            symbol_errors.add_metric([name], len(health.symbol_errors))
        yield from (polls, failures, in_a_row, symbol_errors)

        bar_age = GaugeMetricFamily("riskon_last_bar_age_seconds", "Seconds since the open time of the newest "
                                    "stored bar of each symbol", labels=["symbol"])
        for symbol in runtime.config.symbols:
            last = runtime.store.last_bar_time(symbol.id)
            if last is not None:
                bar_age.add_metric([symbol.id], max((now - last).total_seconds(), 0.0))
        yield bar_age

        fired = CounterMetricFamily("riskon_alerts_fired", "Alerts recorded for sending since start (or the last "
                                    "/reload), by rule and symbol", labels=["rule", "symbol"])
        for (rule_id, symbol_id), count in sorted(runtime.engine.fired.items()):
            fired.add_metric([rule_id, symbol_id], count)
        yield fired

        deliveries = CounterMetricFamily("riskon_deliveries", "Delivery attempts since start by channel and outcome "
                                         "(sent, retry, failed)", labels=["channel", "outcome"])
        for (channel, outcome), count in sorted(runtime.dispatcher.totals.items()):
            deliveries.add_metric([channel, outcome], count)
        yield deliveries
        retries = GaugeMetricFamily("riskon_channel_retries_in_a_row", "Sends of each channel retried since its "
                                    "last success", labels=["channel"])
        for channel in runtime.notifiers:
            retries.add_metric([channel], runtime.dispatcher.retries_in_a_row.get(channel, 0))
        yield retries

        counts = runtime.store.outbox_counts()
        outbox = GaugeMetricFamily("riskon_outbox_deliveries", "Deliveries in the outbox by status", labels=["status"])
        for status, count in counts.items():
            outbox.add_metric([status], count)
        yield outbox
        yield GaugeMetricFamily("riskon_outbox_depth", "Deliveries waiting to be sent (pending or retrying)",
                                value=counts.get("pending", 0) + counts.get("retrying", 0))
        yield GaugeMetricFamily("riskon_paused", "1 while an admin has paused alerting", value=int(runtime.paused))
        yield GaugeMetricFamily("riskon_healthy", "1 when /healthz says ok, 0 when degraded",
                                value=int(not degraded_reasons(runtime, now, outbox=counts)))
        yield GaugeMetricFamily("riskon_start_time_seconds", "When this process started, in Unix seconds",
                                value=runtime.started_at.timestamp())


class RequestErrors(logging.LoggerAdapter[logging.Logger]):
    """Log a request aiohttp could not parse as one warning line; a fault in our own handlers keeps its traceback."""

    def exception(self, msg: object, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):  # the client's fault (an 8 kB header, a bad length): no bug
            client = args[0] if args else "an unknown client"
            reason = (exc_info.message.strip().splitlines() or [""])[0]
            reason = reason.split(" b'")[0].split(' b"')[0].rstrip(":. ")  # never echo the client's bytes
            self.logger.warning("health endpoint refused a malformed request from %s: %d %s", client, exc_info.code,
                                reason)
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)


def metrics_registry(runtime: Runtime) -> CollectorRegistry:
    """Return a registry of its own holding the runtime's figures (never the process-wide default one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuntimeCollector(runtime))
    return registry


class HealthServer:
    """Serve /healthz and /metrics for one runtime on host:port."""

    def __init__(self, runtime: Runtime, host: str = "127.0.0.1", port: int = 9108, secrets: Iterable[str] = ()) -> None:
        self.runtime = runtime
        self.host, self.port = host, port
        self.registry = metrics_registry(runtime)
        self.redact = RedactSecrets(secrets)
        self._runner: web.AppRunner | None = None
        self._database_trouble = ""  # why the database could not be read at the last probe, logged once

    async def start(self) -> None:
        """Bind and start serving; the bound port replaces 0."""
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        self._runner = web.AppRunner(app, access_log=None, logger=RequestErrors(log, {}))
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("health endpoint on http://%s:%d/healthz and /metrics", self.host, self.port)

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def healthz(self, request: web.Request) -> web.Response:
        """Answer 200 when all is well, 503 with the reasons when degraded."""
        runtime, now = self.runtime, self.runtime.now()
        outbox: dict[str, int] | None = None
        try:
            outbox = runtime.store.outbox_counts()
            reasons = degraded_reasons(runtime, now, self.redact, outbox)
            self._database_read()
        except STORE_ERRORS as exc:  # the probe's answer is the news: degraded, with the reason
            reasons = [self._database_unreadable(exc)]
        body = {
            "status": "degraded" if reasons else "ok",
            "reasons": reasons,
            "paused": runtime.paused,
            "uptime_seconds": round((now - runtime.started_at).total_seconds(), 1),
            "outbox": outbox,
        }
        return web.Response(status=503 if reasons else 200, text=json.dumps(body, ensure_ascii=False),
                            content_type="application/json")

    async def metrics(self, request: web.Request) -> web.Response:
        """Answer the Prometheus text exposition of the runtime's figures."""
        try:
            payload = self.redact.redact(generate_latest(self.registry).decode("utf-8"))
            self._database_read()
        except STORE_ERRORS as exc:  # a failed scrape says it to Prometheus (up == 0); the reason is for people
            return web.Response(status=503, text=self._database_unreadable(exc) + "\n")
        return web.Response(body=payload.encode("utf-8"), headers={"Content-Type": CONTENT_TYPE_LATEST})

    def _database_unreadable(self, exc: BaseException) -> str:
        """Return why the database cannot be read (secrets removed), logging it once per change."""
        reason = self.redact.redact(f"database cannot be read: {exc}")[:300]
        if reason != self._database_trouble:
            log.warning("health endpoint: %s", reason)
        self._database_trouble = reason
        return reason

    def _database_read(self) -> None:
        """Log, once, that the database can be read again after a failed probe."""
        if self._database_trouble:
            log.info("health endpoint: the database can be read again")
        self._database_trouble = ""


async def start_health(runtime: Runtime, secrets: Iterable[str] = ()) -> HealthServer | None:
    """Start the endpoint when config enables it; log (never raise) when it cannot bind, alerts matter more."""
    settings = runtime.config.health
    if not settings.enabled:
        return None
    server = HealthServer(runtime, settings.host, settings.port, secrets)
    try:
        await server.start()
    except OSError as exc:
        log.error("health endpoint could not bind %s:%d: %s; running without it", settings.host, settings.port, exc)
        return None
    return server
