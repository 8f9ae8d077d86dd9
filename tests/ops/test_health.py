"""The health endpoint over real HTTP: /healthz says ok or degraded (with reasons), /metrics speaks Prometheus."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from alerts.bars import Bar
from alerts.events import AlertEvent
from bot.config import parse_config
from bot.feeds import FEEDS
from bot.health import HealthServer, start_health
from bot.runtime import Runtime
from storage import Store
from tests.fakes.telegram_api import TOKEN, FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# The smallest valid config: a config without rules is refused (the bot would never alert).
ONE_RULE = ("\nfeeds: {f: {kind: replay, path: /tmp}}\nsymbols: [{id: X, feed: f}]\n"
            "rules: [{id: r, kind: new_ath, symbols: [X]}]\n")


def write_csv(folder: Path, stem: str, first: date, closes: list[float]) -> None:
    lines = ["date,open,high,low,close,volume"]
    for offset, close in enumerate(closes):
        lines.append(f"{first + timedelta(days=offset)},{close},{close * 1.01},{close * 0.99},{close},1000")
    (folder / f"{stem}.csv").write_text("\n".join(lines) + "\n")


def daily_bars(last: date, count: int, close: float = 100.0) -> list[Bar]:
    first = last - timedelta(days=count - 1)
    return [Bar(datetime.combine(first + timedelta(days=i), datetime.min.time(), timezone.utc), close, close + 1,
                close - 1, close, 10.0) for i in range(count)]


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def healthz(server: HealthServer) -> tuple[int, dict]:
    status, content_type, text = await get(f"http://127.0.0.1:{server.port}/healthz")
    assert content_type.startswith("application/json")
    return status, json.loads(text)


async def metrics(server: HealthServer) -> dict[tuple[str, tuple], float]:
    status, content_type, text = await get(f"http://127.0.0.1:{server.port}/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_the_endpoint_is_off_by_default_and_bound_to_loopback():
    config = parse_config(ONE_RULE, env={})
    assert config.health.enabled is False
    assert config.health.host == "127.0.0.1" and config.health.port == 9108


async def test_disabled_endpoint_binds_nothing(store, tmp_path):
    config = parse_config("health: {enabled: false, port: 0}" + ONE_RULE, env={})
    runtime = Runtime(config, store, console_stream=io.StringIO())
    assert await start_health(runtime) is None


@pytest.fixture
async def telegram():
    fake = await FakeTelegram(max_poll_seconds=1).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def watched(store, tmp_path, telegram):
    """A runtime with a good feed (BTC, ^RUT bars stored), a broken feed, Telegram, and its health server."""
    config = parse_config(f"""
feeds:
  markets: {{kind: replay, path: "{tmp_path}"}}
  broken: {{kind: replay, path: "{tmp_path / 'missing'}"}}
symbols:
  - {{id: BTC, feed: markets, asset_class: crypto}}
  - {{id: "^RUT", feed: markets, asset_class: index}}
  - {{id: IWM, feed: broken, asset_class: etf}}
rules: [{{id: btc_ath, kind: new_ath, symbols: [BTC], min_history_days: 0}}]
channels:
  telegram: {{token: "${{TELEGRAM_BOT_TOKEN}}", base_url: "{telegram.base_url}", poll_timeout_seconds: 1,
             register_commands: false}}
health: {{enabled: true, port: 0, outbox_backlog: 3, channel_retries: 2}}
""", env={"TELEGRAM_BOT_TOKEN": TOKEN})
    store.upsert_bars("BTC", daily_bars(date(2026, 6, 9), 30))
    store.upsert_bars("^RUT", daily_bars(date(2026, 6, 9), 30, 2000.0))
    clock = Clock(NOW)
    runtime = Runtime(config, store, clock=clock, feeds={
        "markets": FEEDS["replay"].build("markets", FEEDS["replay"].Settings(path=str(tmp_path)), [], store),
        "broken": FEEDS["replay"].build("broken", FEEDS["replay"].Settings(path=str(tmp_path / "missing")), [], store),
    })
    runtime.test_clock = clock
    await runtime.start()
    server = await start_health(runtime, [TOKEN])
    assert server is not None
    yield runtime, server
    await server.stop()
    await runtime.close()


async def test_healthz_is_ok_when_all_is_well(watched):
    runtime, server = watched
    status, body = await healthz(server)
    assert (status, body["status"], body["reasons"]) == (200, "ok", [])
    assert body["paused"] is False and body["outbox"]["pending"] == 0


async def test_healthz_names_stale_symbols(watched):
    runtime, server = watched
    runtime.test_clock.now = NOW + timedelta(days=3)  # crypto is stale after 2 days, an index after 5
    status, body = await healthz(server)
    assert status == 503 and body["status"] == "degraded"
    assert body["reasons"] == ["symbol BTC is stale: last bar 2026-06-09 00:00 UTC"]
    runtime.test_clock.now = NOW + timedelta(days=8)
    assert len((await healthz(server))[1]["reasons"]) == 2


async def test_healthz_names_a_failing_feed_until_it_recovers(watched):
    runtime, server = watched
    await runtime.poll("broken")
    status, body = await healthz(server)
    assert status == 503
    assert len(body["reasons"]) == 1 and body["reasons"][0].startswith("feed broken: 1 failed polls in a row (")
    assert "does not exist" in body["reasons"][0]
    runtime.health["broken"].failures = 0  # what a good poll does
    assert (await healthz(server))[0] == 200


async def test_healthz_names_an_outbox_backlog_and_a_channel_down(watched, telegram):
    runtime, server = watched
    store = runtime.store
    chats = [store.subscribe("telegram", str(100 + i)) for i in range(4)]
    for chat in chats:
        telegram.add_private_chat(int(chat.chat_id))
    event = AlertEvent("btc_ath", "new_ath", "BTC", datetime(2026, 6, 9, tzinfo=timezone.utc), {"close": 101.0})
    store.record_alert(event, "BTC new all-time high", NOW, chats)
    status, body = await healthz(server)
    assert status == 503
    assert body["reasons"] == ["outbox backlog: 4 deliveries waiting (more than 3)"]

    telegram.inject("500", times=4)  # Telegram answers 500 to every send
    report = await runtime.deliver()
    assert report.outcomes[("telegram", "retry")] == 4
    status, body = await healthz(server)
    assert "channel telegram is down: its last 4 sends all have to be retried" in body["reasons"]

    runtime.test_clock.now = NOW + timedelta(minutes=5)  # past every retry time
    report = await runtime.deliver()
    assert report.outcomes[("telegram", "sent")] == 4
    runtime.test_clock.now = NOW
    assert await healthz(server) == (200, {"status": "ok", "reasons": [], "paused": False, "uptime_seconds": 0.0,
                                           "outbox": {"pending": 0, "sent": 4, "retrying": 0, "failed": 0}})


async def test_metrics_count_polls_bars_alerts_deliveries_and_the_outbox(store, tmp_path):
    write_csv(tmp_path, "BTC", date(2026, 1, 1), [100.0 + i for i in range(40)])  # a new high every day
    config = parse_config(f"""
feeds:
  markets: {{kind: replay, path: "{tmp_path}", start: "2026-02-07"}}
  broken: {{kind: replay, path: "{tmp_path / 'missing'}"}}
symbols: [{{id: BTC, feed: markets, asset_class: crypto}}, {{id: ETH, feed: broken, asset_class: crypto}}]
rules: [{{id: btc_ath, kind: new_ath, symbols: [BTC], rearm_pct: 0, min_history_days: 0}}]
health: {{enabled: true, port: 0}}
""", env={})
    replay = FEEDS["replay"].build("markets", FEEDS["replay"].Settings(**config.feeds["markets"].settings),
                                   config.symbols, store)
    replay.load()
    broken = FEEDS["replay"].build("broken", FEEDS["replay"].Settings(**config.feeds["broken"].settings), [], store)
    console = io.StringIO()
    runtime = Runtime(config, store, clock=replay.clock, live_since=replay.live_since(), console_stream=console,
                      feeds={"markets": replay, "broken": broken})
    server = await start_health(runtime)
    try:
        polls = 0
        while not replay.exhausted:
            await runtime.poll("markets")
            await runtime.deliver()
            polls += 1
        await runtime.poll("broken")
        figures = await metrics(server)
    finally:
        await server.stop()
        await runtime.close()
    fired = runtime.engine.fired[("btc_ath", "BTC")]
    assert fired == 3  # the live days, 2026-02-07 to 2026-02-09
    assert figures[("riskon_feed_polls_total", (("feed", "markets"),))] == polls
    assert figures[("riskon_feed_poll_failures_total", (("feed", "markets"),))] == 0
    assert figures[("riskon_feed_polls_total", (("feed", "broken"),))] == 1
    assert figures[("riskon_feed_poll_failures_total", (("feed", "broken"),))] == 1
    assert figures[("riskon_feed_failures_in_a_row", (("feed", "broken"),))] == 1
    # The replay's clock is the close of the last day served: the last bar opened one day before.
    assert figures[("riskon_last_bar_age_seconds", (("symbol", "BTC"),))] == 86400
    assert ("riskon_last_bar_age_seconds", (("symbol", "ETH"),)) not in figures  # no bar, no age
    assert figures[("riskon_alerts_fired_total", (("rule", "btc_ath"), ("symbol", "BTC")))] == fired
    assert figures[("riskon_deliveries_total", (("channel", "console"), ("outcome", "sent")))] == fired
    assert figures[("riskon_outbox_deliveries", (("status", "sent"),))] == fired
    assert figures[("riskon_outbox_depth", ())] == 0
    assert figures[("riskon_channel_retries_in_a_row", (("channel", "console"),))] == 0
    assert figures[("riskon_paused", ())] == 0
    assert figures[("riskon_healthy", ())] == 0  # the broken feed
    assert console.getvalue().count("new all-time high") == fired


async def test_two_runtimes_keep_their_own_registries(tmp_path):
    servers, stores = [], []
    try:
        for name in ("first", "second"):
            config = parse_config(f"feeds: {{{name}: {{kind: replay, path: '{tmp_path}'}}}}\n"
                                  f"symbols: [{{id: X, feed: {name}}}]\nrules: [{{id: r, kind: new_ath, symbols: [X]}}]\n"
                                  "health: {enabled: true, port: 0}", env={})
            store = Store.memory()
            stores.append(store)
            runtime = Runtime(config, store, console_stream=io.StringIO())
            servers.append(await start_health(runtime))
        first, second = [await metrics(server) for server in servers]
    finally:
        for server in servers:
            await server.stop()
        for store in stores:
            store.close()
    assert ("riskon_feed_polls_total", (("feed", "first"),)) in first
    assert ("riskon_feed_polls_total", (("feed", "second"),)) not in first
    assert ("riskon_feed_polls_total", (("feed", "second"),)) in second
    assert not [m for m in REGISTRY.collect() if m.name.startswith("riskon_")], "the global registry stays clean"


async def test_a_taken_port_is_logged_and_the_bot_runs_on(store, caplog):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        runtime = Runtime(parse_config(f"health: {{enabled: true, port: {port}}}" + ONE_RULE, env={}), store,
                          console_stream=io.StringIO())
        assert await start_health(runtime) is None
    finally:
        taken.close()
    assert f"health endpoint could not bind 127.0.0.1:{port}" in caplog.text


async def test_unknown_paths_are_404(watched):
    runtime, server = watched
    status, _, _ = await get(f"http://127.0.0.1:{server.port}/admin")
    assert status == 404


async def raw_request(port: int, request: bytes) -> bytes:
    """Send bytes as they are (no client library would send a malformed request) and read the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


@pytest.mark.parametrize("request_bytes", [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",  # over aiohttp's 8 kB a line
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
], ids=["8kB-header", "bad-content-length"])
async def test_a_malformed_request_is_one_warning_line_not_a_traceback(watched, caplog, request_bytes):
    runtime, server = watched
    caplog.set_level(logging.DEBUG)
    answer = await raw_request(server.port, request_bytes)
    assert answer.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 ")), answer[:100]
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.exc_info for r in records] == [None], [r.getMessage() for r in records]
    line = records[0].getMessage()
    assert records[0].levelno == logging.WARNING and "\n" not in line
    assert line.startswith("health endpoint refused a malformed request from 127.0.0.1: 400 "), line
    assert "aaaa" not in line and "nope" not in line, "the client's bytes are not echoed into the log"
    assert "Traceback" not in caplog.text
    assert (await healthz(server))[0] == 200, "the endpoint serves on"


async def test_a_database_that_cannot_be_read_is_a_degraded_answer_not_a_traceback(tmp_path, caplog):
    # Was aiohttp's 500 "Internal Server Error" and an ERROR traceback in the log at every probe and scrape.
    path = tmp_path / "riskon.db"
    store = Store.open(path)
    runtime = Runtime(parse_config("health: {enabled: true, port: 0}" + ONE_RULE, env={}), store,
                      console_stream=io.StringIO())
    server = await start_health(runtime)
    assert server is not None
    try:
        assert (await healthz(server))[0] == 200
        with sqlite3.connect(path) as other:  # another process breaks the schema under the running bot
            other.execute("drop table deliveries")
        other.close()
        for _ in range(2):
            status, body = await healthz(server)
            assert status == 503 and body["status"] == "degraded"
            assert body["reasons"] == ["database cannot be read: no such table: deliveries"], body
        status, _, text = await get(f"http://127.0.0.1:{server.port}/metrics")
        assert status == 503 and text == "database cannot be read: no such table: deliveries\n"
    finally:
        await server.stop()
        await runtime.close()
        store.close()
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert caplog.text.count("database cannot be read") == 1, "said once, not at every probe"
