"""Run the configured rules over history through the live Engine: each market day one poll, all in one batch.

Same rule code (alerts/evaluate.step_rule), same ordering (time, then config symbol order), same cross-asset
context and notify policy as `riskon replay`: no second implementation. Nothing in it waits (the engine and the
composites compute from memory), so it runs without an event loop, and a backtest loads no asyncio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from alerts.bars import INTERVAL_SECONDS, Bar
from alerts.events import AlertEvent
from bot.backtest.history import composite_feeds, utc_day
from bot.config import Config

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
LENGTH = {interval: timedelta(seconds=seconds) for interval, seconds in INTERVAL_SECONDS.items()}


@dataclass(repr=False)
class RuleRun:
    """What the rules did over history: the alerts, and the bars of computed symbols (composites) as live."""

    alerts: list[AlertEvent]
    computed: dict[str, list[Bar]] = field(default_factory=dict)

    def __repr__(self) -> str:
        # Short: asyncio.run writes out the repr of its main task, result and all, as it restores the SIGINT
        # handler (twice), and a caller may return a RuleRun from one: every alert and bar written out cost ~35 ms.
        computed = ", ".join(f"{symbol} {len(bars):,} bars" for symbol, bars in self.computed.items())
        return f"RuleRun({len(self.alerts):,} alerts; computed: {computed or 'none'})"


def replay_rules(
    config: Config,
    bars_by_symbol: Mapping[str, Sequence[Bar]],
    start: date | None = None,
    flows: Mapping[str, Sequence[tuple[datetime, float]]] | None = None,
    truncated_since: Mapping[str, datetime] | None = None,
) -> RuleRun:
    """Feed history to the live Engine as `riskon replay` does: each market day's bars in one batch, then each
    computed feed (composites) polled over what is stored, its new bars in a batch of their own
    (`truncated_since`: histories known to start late, as the replay feed reports them)."""
    from bot.engine import Engine
    from bot.feeds import build_feed
    from bot.feeds.composite import CompositeFeed
    from bot.feeds.served import ServedBars
    from storage import Store

    # The engine shows each bar only the flows dated by its day, however many days a batch holds.
    flows = {fund: sorted(items) for fund, items in (flows or {}).items()}
    store = Store.memory()  # the engine records alerts and rule states in it as in `run`
    served = ServedBars(store)  # what the composites read: the bars handed to the engine so far
    computed_feeds: list[tuple[CompositeFeed, list[str], set[str]]] = []
    try:
        # No bars stored: the whole history is one engine batch whose ~50,000 bars would be written once it had
        # been stepped through (0.15-0.2 s), and nothing reads them back (the composites read ServedBars, the
        # study the bars it was given).
        engine = Engine(store, config.bindings(), [s.id for s in config.symbols],
                        flows_of=lambda fund: flows.get(fund, ()), stores_bars=False)
        engine.truncated_since.update(truncated_since or {})
        for name in sorted(composite_feeds(config)):
            served_symbols = [s for s in config.symbols if s.feed == name]
            feed = build_feed(name, config.feeds[name].kind, config.feeds[name].settings, served_symbols, store)
            assert isinstance(feed, CompositeFeed)  # composite_feeds names only those
            feed.bars = served
            inputs = {member for index in feed.settings.indexes.values() for member in index.members}
            computed_feeds.append((feed, [s.id for s in served_symbols], inputs))
        computed_ids = {symbol for _, symbols, _ in computed_feeds for symbol in symbols}
        members = {member for _, _, inputs in computed_feeds for member in inputs}  # all the composites read
        # Bars closing before `start` warm the rules up; their events are history, not alerts.
        live_since = utc_day(start) or EPOCH
        days: dict[datetime, dict[str, list[Bar]]] = {}
        day_of = days.get
        intervals: set[str] = set()
        for symbol, bars in bars_by_symbol.items():
            if symbol in computed_ids:
                continue  # computed below from its members, day by day, as the live feed does
            intervals.update({bar.interval for bar in bars})
            for bar in bars:
                if bar.final:
                    moment = bar.time
                    batch = day_of(moment)
                    if batch is None:
                        days[moment] = {symbol: [bar]}
                    else:
                        held = batch.get(symbol)
                        if held is None:
                            batch[symbol] = [bar]
                        else:
                            held.append(bar)
        # Daily history has one bar length: each day's poll then closes one length after it opens.
        length = LENGTH[next(iter(intervals))] if len(intervals) == 1 else None
        # Each day is one poll of the history, then one poll of each computed feed, as `riskon replay` polls;
        # all of them go to the engine as cycles of one batch (each cycle sees what it would see alone).
        cycles: list[tuple[Mapping[str, Sequence[Bar]], datetime]] = []
        newest: dict[str, datetime] = {}
        started: set[str] = set()  # the members that have had a bar
        for moment in sorted(days):
            batch = days[moment]
            # The latest close of the day's bars.
            now = moment + (length or max(LENGTH[b.interval] for bars in batch.values() for b in bars))
            cycles.append((batch, now))
            if not computed_feeds:
                continue
            moved = members.intersection(batch)
            for symbol in moved:
                served.add(symbol, batch[symbol])
            started.update(moved)
            computed_today: set[str] = set()  # what changed today: the day's symbols and these
            for feed, symbols, inputs in computed_feeds:
                if inputs and inputs.isdisjoint(batch) and inputs.isdisjoint(computed_today):
                    continue  # none of its members moved since its last poll: that poll would serve nothing new
                if not inputs <= started:
                    continue  # a member has no bar yet: the poll would wait for its first (ALTS: ~900 days)
                result = feed.compute(symbols, {s: newest.get(s) for s in symbols}, now)  # as its poll (fetch)
                if result.bars:
                    cycles.append((result.bars, now))
                    for symbol, bars in result.bars.items():
                        finals = [b for b in bars if b.final]
                        if finals:
                            served.add(symbol, finals)
                            newest[symbol] = max(finals[-1].time, newest.get(symbol, finals[-1].time))
                            computed_today.add(symbol)
        alerts = [event for _, event in engine.ingest_cycles(cycles, live_since).alerts]
        computed = {symbol: served.load_bars(symbol) for symbol in computed_ids}
        return RuleRun(alerts, {symbol: bars for symbol, bars in computed.items() if bars})
    finally:
        store.close()  # the composites hold nothing of their own to close (they read `served`)

