"""Faults: scripted mixes from Yahoo and Telegram over five market days; riskon keeps going, misses nothing, invents nothing.

The runtime `riskon run` builds is driven by an injected clock (each market day is a few polls at 20:30 UTC, after
the close is confirmable) against fake Yahoo and fake Telegram servers on 127.0.0.1. Telegram is reached through a
small TCP proxy that can reset connections, as a flaky network does. What each day throws at the bot:

- Yahoo: HTTP 502, 429 with Retry-After, malformed JSON, a hang past the timeout, an empty answer, a bar that is
  not published (stale data), and a one-day +40% bad print that reverts.
- Telegram: 429 with retry_after, 500, an HTML 502, a hang past the timeout, 403 from users who blocked the bot,
  "chat not found", and reset connections.

Two alerts are real (^RUT closes above its all-time high twice); each must reach every reachable chat exactly
once, in order, and nothing else may be recorded as an alert. /status and /health, asked over Telegram by an admin,
must name what is degraded while it is.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest

from bot.config import parse_config
from bot.runtime import Runtime
from storage import Store
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.fakes.yahoo import DailyRow, FakeYahoo, Instrument, read_csv_rows

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:The inplace keyword")]

THURSDAY = date(2026, 9, 24)
DAYS = [date(2026, 9, 25), date(2026, 9, 28), date(2026, 9, 29), date(2026, 9, 30), date(2026, 10, 1)]
ADMIN = 42
CHATS = list(range(70_000, 70_030))
BLOCKED = {70_003, 70_017}  # 403: blocked the bot
VANISHED = {70_011}  # 400: chat not found
REACHABLE = [c for c in CHATS if c not in BLOCKED | VANISHED]

CONFIG = """
schedule: {{retry_base_seconds: 5, retry_max_seconds: 60, max_attempts: 12, backoff_max_seconds: 600}}
feeds:
  yahoo: {{kind: yahoo, base_url: "{yahoo}", every_seconds: 300, timeout_seconds: 1.5, cache_dir: "{cache}",
          stale_after_seconds: 3600, backoff_base_seconds: 5, backoff_max_seconds: 600}}
symbols:
  - {{id: "^RUT", feed: yahoo, asset_class: index}}
  - {{id: IWM, feed: yahoo, asset_class: etf}}
rules:
  - {{id: rut_ath, kind: new_ath, symbols: ["^RUT"], by: close}}
  - {{id: iwm_ath, kind: new_ath, symbols: [IWM], by: close}}
admins: ["telegram:{admin}"]
channels:
  telegram: {{token: "${{TELEGRAM_BOT_TOKEN}}", base_url: "{telegram}", poll_timeout_seconds: 1,
              request_timeout_seconds: 3, messages_per_second: 200, register_commands: false}}
"""


class Clock:
    """The runtime's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class ResettingProxy:
    """A TCP proxy in front of the fake Telegram that resets (RST) the next N requests before forwarding them."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.pending_resets = 0
        self.resets = 0
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> ResettingProxy:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._server.close()
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        def reset() -> None:
            sock = writer.get_extra_info("socket")
            if sock is not None:  # linger 0: close() sends RST, as a dropped connection does
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            up_writer.transport.abort()

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, from_bot: bool) -> None:
            try:
                while data := await source.read(65536):
                    if from_bot and self.pending_resets > 0:
                        self.pending_resets -= 1
                        self.resets += 1
                        reset()
                        return
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort() if sink.transport.is_closing() else sink.close()

        try:
            await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))
        finally:
            self._writers -= {writer, up_writer}


@pytest.fixture
def fresh_yfinance(tmp_path):
    """Keep yfinance's caches in the test's folder and its memoised GETs empty."""
    import yfinance as yf
    from yfinance.data import YfData

    yf.set_tz_cache_location(str(tmp_path / "yf"))
    YfData.cache_get.cache_clear()


def session(day: date, close: float, high: float | None = None) -> DailyRow:
    """Return a consistent daily row (open at the close, high and low around it)."""
    high = max(high or close, close) * 1.0005
    return DailyRow(day, close, high, close * 0.995, close, 1_000_000)


def closing(day: date) -> datetime:
    """Return 20:30 UTC of a day: after the NYSE close (EDT) and its confirmation delay."""
    return datetime.combine(day, datetime.min.time(), timezone.utc) + timedelta(hours=20, minutes=30)


async def settle(runtime: Runtime, clock: Clock, rounds: int = 12) -> None:
    """Poll and deliver until the outbox is empty and no symbol is in error, moving the clock on between rounds."""
    for _ in range(rounds):
        await runtime.poll("yahoo")
        await runtime.deliver()
        counts = runtime.store.outbox_counts()
        if counts["pending"] == counts["retrying"] == 0 and not runtime.health["yahoo"].symbol_errors:
            return
        clock.now += timedelta(minutes=2)  # past the feed's backoff and the deliveries' retry delays
    raise AssertionError(f"not settled: outbox {runtime.store.outbox_counts()}, "
                         f"feed errors {runtime.health['yahoo'].symbol_errors}")


async def ask(telegram: FakeTelegram, command: str) -> str:
    """Send a command as the admin in a private chat and return the bot's reply."""
    before = len(telegram.messages_to(ADMIN))
    telegram.post_command(ADMIN, ADMIN, command)
    await telegram.wait_until(lambda: len(telegram.messages_to(ADMIN)) > before, timeout=15)
    return telegram.messages_to(ADMIN)[-1].text


async def test_fault_mixes_deliver_every_real_alert_once_and_no_false_one(tmp_path, market_data, fresh_yfinance):
    # Telegram's time-out (3 s) is far above a send's time on a loaded machine: a send the fake took but the bot
    # gave up on would rightly go again, a duplicate this test would blame on riskon. Only the hangs time out.
    yahoo, telegram = FakeYahoo(hang_seconds=2.5), FakeTelegram(overall_per_second=300, hang_seconds=3.5,
                                                                 max_poll_seconds=0.5)
    rut = yahoo.add(Instrument("^RUT", read_csv_rows(market_data / "RUT.csv", until=THURSDAY)))
    iwm = yahoo.add(Instrument("IWM", read_csv_rows(market_data / "IWM.csv", until=THURSDAY), instrument_type="ETF"))
    telegram.add_private_chat(ADMIN)
    for chat_id in CHATS:
        chat = telegram.add_private_chat(chat_id)
        chat.blocked, chat.gone = chat_id in BLOCKED, chat_id in VANISHED
    await yahoo.start()
    await telegram.start()
    proxy = await ResettingProxy(telegram.port).start()
    config = parse_config(CONFIG.format(yahoo=yahoo.url, cache=tmp_path / "yf", admin=ADMIN,
                                        telegram=f"http://127.0.0.1:{proxy.port}/bot"),
                          env={"TELEGRAM_BOT_TOKEN": TOKEN})
    clock = Clock(closing(THURSDAY))
    store = Store.open(tmp_path / "riskon.db")
    runtime = Runtime(config, store, clock=clock, live_since=closing(THURSDAY) + timedelta(hours=4))  # Friday 00:00
    for chat_id in CHATS:
        store.subscribe("telegram", str(chat_id))
    faults = Counter({"telegram 403 blocked": len(BLOCKED), "telegram 400 chat not found": len(VANISHED)})

    def yahoo_fault(symbol: str, kind: str, **options) -> None:
        # Twice: yfinance retries a failed request once by itself (with a fresh crumb).
        yahoo.fail(symbol, kind, times=2, **options)
        faults[f"yahoo {kind}{options.get('status', '') if kind == 'status' else ''}"] += 2

    def telegram_fault(kind: str, chats: list[int]) -> None:
        for chat_id in chats:
            telegram.inject(kind, chat_id)
        faults[f"telegram {kind}"] += len(chats)

    record = max(r.close for r in rut.rows)
    iwm_close = iwm.rows[-1].close
    expected: list[str] = []
    try:
        await runtime.start()
        await settle(runtime, clock)  # backfill: history is silent
        assert store.alert_count() == 0

        # Friday: ^RUT closes 1% above its all-time high. Yahoo answers 502 for ^RUT and 429 for IWM first;
        # Telegram throttles, fails, hangs, resets and refuses.
        clock.now = closing(DAYS[0])
        rut.rows.append(session(DAYS[0], record * 1.01))
        iwm.rows.append(session(DAYS[0], iwm_close * 0.99))
        yahoo_fault("^RUT", "status", status=502)
        yahoo_fault("IWM", "status", status=429, retry_after=30)
        await runtime.poll("yahoo")
        assert store.alert_count() == 0
        health = await ask(telegram, "/health")
        status = await ask(telegram, "/status")
        for reply in (health, status):
            assert "HTTP 502" in reply and "429" in reply, reply
        telegram_fault("429", CHATS[0:3])
        telegram_fault("500", CHATS[4:6])
        telegram_fault("502", CHATS[6:8])
        telegram_fault("timeout", CHATS[8:10])
        proxy.pending_resets = 4
        faults["telegram connection reset"] += 4
        await settle(runtime, clock)
        expected.append(f"rut_ath|^RUT|new_ath|{DAYS[0]}T00:00Z")

        # Monday: Yahoo sends garbage for ^RUT at first; IWM prints +40% (a bad print, held back, never alerted).
        clock.now = closing(DAYS[1])
        rut.rows.append(session(DAYS[1], record * 1.004))
        iwm.rows.append(session(DAYS[1], iwm_close * 1.4))
        yahoo_fault("^RUT", "malformed")
        faults["yahoo bad print"] += 1
        await settle(runtime, clock)

        # Tuesday: IWM is back where it was (the print is dropped); ^RUT's request hangs past the timeout first.
        clock.now = closing(DAYS[2])
        rut.rows.append(session(DAYS[2], record * 1.002))
        iwm.rows.append(session(DAYS[2], iwm_close * 0.995))
        yahoo_fault("^RUT", "timeout")
        await settle(runtime, clock)
        assert DAYS[1] not in [b.time.date() for b in store.load_bars("IWM")]

        # Wednesday: Yahoo does not publish ^RUT's bar (stale data); IWM's first answer is empty.
        clock.now = closing(DAYS[3])
        iwm.rows.append(session(DAYS[3], iwm_close * 0.99))
        yahoo_fault("IWM", "empty")
        faults["yahoo stale bar"] += 1
        for _ in range(3):
            await runtime.poll("yahoo")
            clock.now += timedelta(minutes=40)
        assert "^RUT" in runtime.feeds["yahoo"].stale(clock.now)
        health = await ask(telegram, "/health")
        status = await ask(telegram, "/status")
        assert "STALE ^RUT" in status and "has not published the 2026-09-30 bar" in status, status
        assert "^RUT is stale" in health and "has not published the 2026-09-30 bar" in health, health

        # Thursday: the late bar arrives with the next one, and ^RUT closes 2% above the old record: a new high.
        clock.now = closing(DAYS[4])
        rut.rows.append(session(DAYS[3], record * 0.998))
        rut.rows.append(session(DAYS[4], record * 1.02))
        iwm.rows.append(session(DAYS[4], iwm_close * 0.99))
        telegram_fault("429", CHATS[10:12])
        telegram_fault("timeout", CHATS[12:13])
        proxy.pending_resets = 2
        faults["telegram connection reset"] += 2
        await settle(runtime, clock)
        expected.append(f"rut_ath|^RUT|new_ath|{DAYS[4]}T00:00Z")
        health = await ask(telegram, "/health")
        assert "Degraded" not in health and "All feeds and channels OK" in health, health
    finally:
        await runtime.close()
        store_alerts = [row[0] for row in store.db.execute("select dedup_key from alerts where silent = 0 order by id")]
        outbox = store.outbox_counts()
        active = {int(s.chat_id) for s in store.active_subscriptions("telegram")}
        store.close()
        await proxy.stop()
        await telegram.stop()
        await yahoo.stop()

    alert_texts = [m for m in telegram.sent if m.chat_id in CHATS]
    copies = Counter(m.chat_id for m in alert_texts)
    print(f"\nfaults injected: {sum(faults.values())} ({dict(faults)}); alerts {len(store_alerts)} "
          f"(false 0), resets done {proxy.resets}")
    assert store_alerts == expected, "an alert fired that the data did not justify, or a real one was missed"
    assert {c: copies[c] for c in REACHABLE if copies[c] != 2} == {}, "every reachable chat gets both alerts once"
    for chat_id in REACHABLE:
        first, second = [m.text for m in alert_texts if m.chat_id == chat_id]
        assert first != second
    assert not (BLOCKED | VANISHED) & set(copies)
    assert outbox == {"pending": 0, "sent": 2 * len(REACHABLE), "retrying": 0, "failed": len(BLOCKED | VANISHED)}
    assert active == set(REACHABLE)
    assert proxy.resets == 6
