"""What is degraded: the reasons /healthz, /metrics and /status give, read from the running bot.

Apart from the endpoint (bot.health) so that /status needs neither aiohttp nor prometheus: importing them costs
most of a second on the event loop, and the first /status after start would wait for it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from alerts import status as figures
from bot.feeds.base import MarksStale
from bot.logs import RedactSecrets
from bot.seams import HealthView

if TYPE_CHECKING:
    from bot.config import SymbolConfig

log = logging.getLogger(__name__)

MAX_REASON = 300  # a feed's error text can be long; a reason is a line on a dashboard


def degraded_reasons(runtime: HealthView, now: datetime, redact: RedactSecrets | None = None,
                     outbox: dict[str, int] | None = None) -> list[str]:
    """Say, one line each, what is wrong: failing feeds, stale symbols, outbox backlog, channels down, database file."""
    settings = runtime.config.health
    reasons: list[str] = []
    for name, health in runtime.health.items():
        if health.failures:
            reasons.append(f"feed {name}: {health.failures} failed polls in a row ({health.last_error})")
        for symbol_id, error in sorted(health.symbol_errors.items()):
            reasons.append(f"feed {name}: {symbol_id}: {error}")
    for symbol in runtime.config.symbols:
        why = staleness(runtime, symbol, now)
        if why:
            reasons.append(f"symbol {symbol.id} is stale: {why}")
    # Counting the outbox scans every delivery ever made (tens of ms after months): callers pass theirs.
    counts = outbox if outbox is not None else runtime.store.outbox_counts()
    waiting = counts.get("pending", 0) + counts.get("retrying", 0)
    if waiting > settings.outbox_backlog:
        reasons.append(f"outbox backlog: {waiting} deliveries waiting (more than {settings.outbox_backlog})")
    for channel, retries in sorted(runtime.channel_retries().items()):
        if retries >= settings.channel_retries:
            reasons.append(f"channel {channel} is down: its last {retries} sends all have to be retried")
    database = runtime.store.file_problem()
    if database:
        reasons.append(database)
    clean = redact or RedactSecrets()
    return [clean.redact(reason)[:MAX_REASON] for reason in reasons]


def staleness(runtime: HealthView, symbol: SymbolConfig, now: datetime) -> str | None:
    """Say why a symbol's data is stale (its feed's own mark, or a last bar too old), or None when current.

    The one check behind /healthz, /metrics, /health and /status: each says the same about a symbol.
    """
    feed = runtime.feeds.get(symbol.feed)
    if isinstance(feed, MarksStale):
        try:
            mark = feed.stale(now).get(symbol.id)
        except Exception:  # a feed's bookkeeping must not break the health check or /status
            log.warning("feed %s could not say which symbols are stale", symbol.feed, exc_info=True)
            mark = None
        if mark is not None:
            return f"no good update since {mark.since:%Y-%m-%d %H:%M} UTC: {mark.why}"
    last = runtime.store.last_bar_time(symbol.id)
    if last is None:
        if symbol.asset_class == "breadth":
            return None  # a snapshot series has no bar until its first snapshot (an hour or more): its feed marks it
        feed_health = runtime.health.get(symbol.feed)
        # Before its feed's first good poll a symbol has simply not been fetched yet.
        return "no bars at all after a good poll of its feed" if feed_health and feed_health.last_ok else None
    if figures.is_stale(last, now, symbol.asset_class):
        return f"last bar {last:%Y-%m-%d %H:%M} UTC"
    return None
