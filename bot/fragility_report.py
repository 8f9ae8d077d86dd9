"""Where a trader sees fragility: the /status line of a small-cap symbol and the line appended to its alerts."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from alerts.events import AlertEvent
from alerts.fragility import describe_fragility
from bot.seams import HealthView

log = logging.getLogger(__name__)

# Alerts that say a small-cap rally is on (or hollow): the ones a fragility figure puts in context.
ANNOTATED_KINDS = ("new_ath", "outflow_divergence")
# An alert carries a snapshot at most this old: an older one says little about today's rally.
ALERT_NOTE_MAX_AGE = timedelta(days=31)


# What fund_for found, by symbol, for the config it was last asked about. A loaded config is frozen (a reload builds
# a new one), and the engine asks on every new-high alert: each answer validated the feed's settings again.
_found_for: tuple[Any, dict[str, tuple[str, Any] | None]] = (None, {})


def fund_for(config: Any, symbol_id: str) -> tuple[str, Any] | None:
    """Return (fund, feed settings) of the fragility feed whose fund is shown beside the symbol, if any."""
    global _found_for
    if _found_for[0] is not config:
        _found_for = (config, {})
    found = _found_for[1]
    if symbol_id not in found:
        found[symbol_id] = _fund_for(config, symbol_id)
    return found[symbol_id]


def _fund_for(config: Any, symbol_id: str) -> tuple[str, Any] | None:
    from bot.feeds.settings import FragilitySettings

    for feed in getattr(config, "feeds", {}).values():
        if feed.kind != "fragility":
            continue
        settings = FragilitySettings(**feed.settings)
        for fund in settings.funds:
            if symbol_id in settings.shown_on(fund):
                return fund, settings
    return None


def status_lines(store: Any, config: Any, symbol_id: str, now: datetime) -> list[str]:
    """Return the fragility line(s) for /status of a symbol: the newest snapshot, and one in progress."""
    from bot.feeds.fragility import fresh_since
    from storage.fragility import FragilityStore

    found = fund_for(config, symbol_id)
    if found is None:
        return []
    fund, settings = found
    table = FragilityStore(store)
    lines = []
    last = table.last_finished(fund, ("complete", "imported"))
    if last is not None and last.unprofitable_pct_count is not None:
        line = describe_fragility(last.unprofitable_pct_count, last.unprofitable_pct_weight, last.day,
                                  last.coverage_pct_weight)
        lines.append(line)
    running = table.running(fund)
    if running is not None:
        done, total = table.progress(running.id, fresh_since(settings, running))
        lines.append(f"Fragility snapshot of {fund} in progress: {done:,} of {total:,} members read")
    elif last is None:
        failed = table.last_finished(fund, ("incomplete",))
        lines.append(f"Unprofitable members: no complete snapshot of {fund} yet"
                     + (f" (last try {failed.day:%Y-%m-%d}: {failed.note.split(';')[0]})" if failed else ""))
    return lines


def alert_note(store: Any, config: Any, event: AlertEvent) -> str | None:
    """Return the fragility line a new-high or hollow-rally alert on a small-cap symbol carries, if any."""
    from storage.fragility import FragilityStore

    if event.kind not in ANNOTATED_KINDS:
        return None
    try:
        found = fund_for(config, event.symbol)
        if found is None:
            return None
        fund = found[0]
        day = event.bar_time.date()
        last = FragilityStore(store).last_finished_on_or_before(fund, day)
    except Exception:  # a fragility problem must never cost the alert itself
        log.warning("no fragility line for %s on %s", event.rule_id, event.symbol, exc_info=True)
        return None
    if last is None or last.unprofitable_pct_count is None or day - last.day > ALERT_NOTE_MAX_AGE:
        return None
    return describe_fragility(last.unprofitable_pct_count, last.unprofitable_pct_weight, last.day,
                              last.coverage_pct_weight)


def request_snapshot(runtime: HealthView, fund: str | None) -> str:
    """Ask every fragility feed (that has the fund) for a snapshot at its next poll; say what will happen."""
    from bot.feeds.fragility import FragilityFeed

    feeds = [feed for feed in runtime.feeds.values() if isinstance(feed, FragilityFeed)]
    if not feeds:
        return "No fragility feed is configured (feeds: kind: fragility, see docs/feeds.md)."
    known = sorted({f for feed in feeds for f in feed.settings.funds})
    wanted = fund.strip().upper() if fund else None
    if wanted is not None and wanted not in known:
        raise ValueError(f"Unknown fund '{(fund or '')[:12]}'. Known: {', '.join(known)}.")
    lines = []
    for feed in feeds:
        for name in feed.request_snapshot(wanted) if wanted in feed.settings.funds or wanted is None else []:
            members = feed.table.running(name) if feed.table is not None else None
            if members is not None:
                lines.append(f"A snapshot of {name} is already running; /status shows its progress.")
                continue
            pace = feed.settings.requests_per_second
            lines.append(f"A snapshot of {name} starts at the next poll: one Yahoo request every {1 / pace:g} s "
                         f"(about {2000 * 1.15 / pace / 60:.0f} minutes for 2,000 members); /status shows its progress.")
    return "\n".join(lines)
