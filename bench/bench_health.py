"""Health endpoint cost: /healthz and /metrics latency over HTTP on a database months old (the event loop waits)."""

from __future__ import annotations

import asyncio
import io
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _util import median

SYMBOLS, BARS, SUBSCRIBERS, ALERTS, REQUESTS = 12, 3000, 1000, 300, 30
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc)


async def measure(folder: Path) -> list[tuple[str, str]]:
    import aiohttp

    from alerts.bars import Bar
    from alerts.events import AlertEvent
    from bot.config import parse_config
    from bot.health import start_health
    from bot.runtime import Runtime
    from storage import Store

    ids = [f"S{i}" for i in range(SYMBOLS)]
    symbols = "\n".join(f"  - {{id: {s}, feed: markets, asset_class: crypto}}" for s in ids)
    config = parse_config(f"feeds: {{markets: {{kind: replay, path: '{folder}'}}}}\nsymbols:\n{symbols}\n"
                          f"rules: [{{id: ath, kind: new_ath, symbols: [{', '.join(ids)}]}}]\n"
                          "health: {enabled: true, port: 0}\n", env={})
    store = Store.open(folder / "riskon.db", durable=False)
    first = NOW - timedelta(days=BARS)
    for symbol in ids:
        store.upsert_bars(symbol, [Bar(first + timedelta(days=d), 100.0, 101.0, 99.0, 100.0, 1.0) for d in range(BARS)])
    chats = [store.subscribe("telegram", str(100_000 + i)) for i in range(SUBSCRIBERS)]
    for number in range(ALERTS):
        event = AlertEvent("ath", "new_ath", ids[number % SYMBOLS], first + timedelta(days=number), {"close": 1.0})
        store.record_alert(event, "text", NOW, chats)
    # Months of history: every delivery but the last alert's was sent.
    store.db.execute("update deliveries set status = 'sent' where alert_id < (select max(id) from alerts)")
    deliveries = sum(store.outbox_counts().values())
    runtime = Runtime(config, store, clock=lambda: NOW, console_stream=io.StringIO())
    server = await start_health(runtime)
    figures: list[tuple[str, str]] = []
    try:
        async with aiohttp.ClientSession() as session:
            for path in ("/healthz", "/metrics"):
                times = []
                for _ in range(REQUESTS):
                    started = time.perf_counter()
                    async with session.get(f"http://127.0.0.1:{server.port}{path}") as response:
                        await response.read()
                    times.append((time.perf_counter() - started) * 1000)
                figures.append((f"health: {path} median latency", f"{median(times):.1f} ms (max {max(times):.1f} ms)"))
    finally:
        await server.stop()
        store.close()
    figures.insert(0, ("health: database size", f"{SYMBOLS} symbols x {BARS:,} bars, {deliveries:,} deliveries "
                                                f"({SUBSCRIBERS:,} pending)"))
    return figures


def main() -> list[tuple[str, str]]:
    """Seed a database as a bot leaves it after months, then time the endpoints."""
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(measure(Path(tmp)))


if __name__ == "__main__":
    for name, value in main():
        print(f"{name}: {value}")
