"""The engine: new bars in, rules stepped, alerts recorded with their deliveries — one transaction per batch."""

from __future__ import annotations

import bisect
import json
import logging
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from alerts.bars import Bar
from alerts.evaluate import RuleBinding, step_rule
from alerts.events import AlertEvent
from alerts.messages import format_alert, format_price
from alerts.policy import LastAlert, NotifyPolicy, decide, event_price, holds_back
from alerts.rules.base import RuleContext
from storage import Store

log = logging.getLogger(__name__)

INGEST_CHUNK_BARS = 2000  # bars per transaction when a feed returns years of history
REVISIONS_REMEMBERED = 1000  # source revisions of evaluated bars already logged, kept so each is logged once


def chunks_by_time(bars: Mapping[str, Sequence[Bar]], size: int) -> list[dict[str, list[Bar]]]:
    """Split bars (by symbol) into time-ordered chunks of about `size`, never splitting one bar time's bars."""
    ordered = sorted(((bar.time, symbol, bar) for symbol, series in bars.items() for bar in series),
                     key=lambda item: (item[0], item[1]))
    chunks: list[dict[str, list[Bar]]] = []
    current: dict[str, list[Bar]] = {}
    count, last_time = 0, None
    for time, symbol, bar in ordered:
        if count >= size and time != last_time:  # a bar time's bars stay together: rules compare them
            chunks.append(current)
            current, count = {}, 0
        current.setdefault(symbol, []).append(bar)
        count, last_time = count + 1, time
    if current or not chunks:
        chunks.append(current)
    return chunks


RECENT_EVENTS = 1000  # events kept for cross-asset rules (follow_through) across polls and restarts
ONCE = NotifyPolicy()  # the policy of a rule that says nothing else: tell each event once

# One poll's bars by symbol, and the clock when they arrived.
Cycle = tuple[Mapping[str, Sequence[Bar]], datetime]
# A rule's state as saved: (rule_id, symbol, state as JSON text, last bar seen, when, the rule's kind).
SavedState = tuple[str, str, str | None, datetime, datetime, str]


@dataclass
class IngestReport:
    """What one batch of bars did: bars taken, alerts recorded (sent or silent), duplicates skipped."""

    bars: int = 0
    alerts: list[tuple[int, AlertEvent]] = field(default_factory=list)
    silent: int = 0
    duplicates: int = 0
    suppressed: int = 0  # new events the rule's notify policy held back (cooldown, re-arm, once per bar)
    cycles: int = 0  # polls' batches of bars taken (see Engine.ingest_cycles)
    # (cycles taken, alerts recorded) at the end of each cycle that recorded alerts to send: a replay delivers
    # each poll's alerts on their own, after the batch that holds them is committed.
    alerting_cycles: list[tuple[int, int]] = field(default_factory=list)


class Engine:
    """Step every rule over new bars in time order and record what they fire."""

    def __init__(
        self,
        store: Store,
        bindings: Sequence[RuleBinding],
        symbol_order: Sequence[str],
        flows_of: Callable[[str], Sequence[tuple[datetime, float]]] | None = None,
        note_for: Callable[[AlertEvent], str | None] | None = None,
        stores_bars: bool = True,
    ) -> None:
        self.store = store
        # False for a backtest: its whole history is one batch and nothing reads its bars back from the store.
        self.stores_bars = stores_bars
        self.bindings = list(bindings)
        self.order = {symbol: index for index, symbol in enumerate(symbol_order)}
        self.flows_of = flows_of or (lambda symbol: ())
        self.note_for = note_for or (lambda event: None)  # context a message carries (e.g. fragility)
        self.truncated_since: dict[str, datetime] = {}
        self._windows: dict[str, deque[Bar]] = {}
        self._lanes: dict[str, _Lane] = {}  # each symbol's window, rules and committed states, as stepped
        self.fired: Counter[tuple[str, str]] = Counter()  # (rule_id, symbol) -> alerts sent, for summaries and metrics
        self._recent_events: deque[AlertEvent] | None = None
        self._earlier: tuple[AlertEvent, ...] | None = None  # recent_events as a tuple, until the next append
        self._published: dict[str, _Published] = {}  # each symbol's flows as last read
        self._revisions_said: set[tuple[str, datetime, float]] = set()  # each source revision logged once

    def rules_for(self, symbol: str) -> list[RuleBinding]:
        """Return the rules that watch a symbol."""
        return [b for b in self.bindings if symbol in b.symbols]

    def window(self, symbol: str) -> deque[Bar]:
        """Return the recent final bars kept for a symbol (loaded from the cache on first use)."""
        if symbol not in self._windows:
            size = max([b.rule.lookback for b in self.bindings] + [1]) + 1
            self._windows[symbol] = deque(self.store.recent_bars(symbol, size), maxlen=size)
        return self._windows[symbol]

    def recent_events(self) -> deque[AlertEvent]:
        """Return the events of earlier cycles (seeded from the recorded alerts on first use)."""
        if self._recent_events is None:
            rows = self.store.recent_alerts(RECENT_EVENTS, include_silent=True)
            self._recent_events = deque(
                (row.event() for row in reversed(rows)),
                maxlen=RECENT_EVENTS,
            )
        return self._recent_events

    def state(self, rule_id: str, symbol: str) -> tuple[Mapping[str, Any] | None, datetime | None]:
        """Return a rule's committed state for a symbol and the last bar time it saw."""
        for slot in self._lane(symbol).slots:
            if slot.rule_id == rule_id:
                return slot.state, slot.seen
        return self.store.rule_state(rule_id, symbol)

    def ingest(self, bars_by_symbol: Mapping[str, Sequence[Bar]], now: datetime, live_since: datetime) -> IngestReport:
        """Store new bars, step the rules over them in time order, and record every new alert."""
        return self.ingest_cycles([(bars_by_symbol, now)], live_since)

    def ingest_cycles(self, cycles: Iterable[Cycle], live_since: datetime, until_alert: bool = False) -> IngestReport:
        """Ingest several polls' bars, in order, in one transaction: each cycle sees exactly what it would see
        ingested alone (its own events as this cycle's, earlier cycles' as recent events); rule states and bars
        are written once per batch, not once per bar (a replay steps a year of days this way).

        until_alert: stop after the first cycle that records an alert to send, so that it can be delivered
        before later cycles are ingested (`report.cycles` says how many were taken).
        """
        report = IngestReport()
        try:
            dirty: dict[_Slot, datetime] = {}  # the rules on symbols whose state changed -> when
            new_bars: dict[str, list[Bar]] = {}
            flows: dict[str, _Published] = {}  # read once per batch; each bar sees those published by its day
            with self.store.transaction():
                for bars_by_symbol, now in cycles:
                    report.cycles += 1
                    queue = self._queue(bars_by_symbol)
                    if queue:
                        alerts = len(report.alerts)
                        self._ingest(queue, now, live_since, report, dirty, new_bars, flows)
                        if len(report.alerts) > alerts:
                            report.alerting_cycles.append((report.cycles, len(report.alerts)))
                    if until_alert and report.alerts:
                        break
                if self.stores_bars:
                    self.store.upsert_bars_of(new_bars)
                self.store.save_rule_state_texts(self._saved_states(dirty))
            return report
        except BaseException:
            # The transaction rolled back: forget what memory believed, and reload it from the database.
            self._lanes.clear()
            self._windows.clear()
            self._recent_events = None
            self._earlier = None
            raise

    @staticmethod
    def _saved_states(dirty: Mapping[_Slot, datetime]) -> Iterator[SavedState]:
        """Yield the batch's stepped rule states as JSON text (a stepped state has seen its bar)."""
        for slot, now in dirty.items():
            assert slot.seen is not None  # set by the final bar that made the state dirty
            yield slot.rule_id, slot.symbol, slot.state_text(), slot.seen, now, slot.rule.kind

    def _queue(self, bars_by_symbol: Mapping[str, Sequence[Bar]]) -> list[tuple[datetime, int, str, int, Bar]]:
        """Order a poll's bars by time, then by the config's symbol order (leaders before followers)."""
        order, last = self.order, len(self.order)
        queue: list[tuple[datetime, int, str, int, Bar]] = []
        append = queue.append
        for symbol, bars in bars_by_symbol.items():
            rank = order.get(symbol, last)
            for bar in bars:
                # The arrival number keeps equal (time, symbol) bars in the order they came, and bars uncompared.
                append((bar.time, rank, symbol, len(queue), bar))
        if len(queue) > 1:
            queue.sort()
        return queue

    def _lane(self, symbol: str) -> _Lane:
        """Return a symbol's lane, built on first use from its window and its rules' committed states."""
        lane = self._lanes.get(symbol)
        if lane is None:
            slots = []
            for binding in self.rules_for(symbol):
                # Of this kind only: a rule id kept in config.yaml while its kind changed starts afresh.
                state, seen = self.store.rule_state(binding.rule.rule_id, symbol, binding.rule.kind)
                slots.append(_Slot(binding, symbol, state, seen))
            lane = self._lanes[symbol] = _Lane(self.window(symbol), slots)
        return lane

    def _published_flows(self, symbol: str) -> _Published:
        """Return a symbol's flows for a batch, indexed once per series read."""
        flows = self.flows_of(symbol)
        published = self._published.get(symbol)
        if published is None or published.flows is not flows:
            published = self._published[symbol] = _Published(flows)
        return published

    def _ingest(self, queue: list, now: datetime, live_since: datetime, report: IngestReport,
                dirty: dict, new_bars: dict[str, list[Bar]], flows: dict) -> None:
        cycle: tuple[AlertEvent, ...] = ()
        # Events of earlier cycles, as one tuple shared by every bar until a new event is recorded.
        earlier_events = self._earlier_events()
        lanes, truncated_since = self._lanes, self.truncated_since
        taken = 0  # final bars stepped
        for _, _, symbol, _, bar in queue:
            lane = lanes.get(symbol) or self._lane(symbol)
            window = lane.window
            final, bar_time = bar.final, bar.time
            if final and window and bar_time <= window[-1].time:
                # Not newer than what we hold: never evaluated twice, even when the source revised it since.
                self._note_revision(symbol, bar, window)
                continue
            if lane.reads_flows:
                published = flows.get(symbol)
                if published is None:
                    published = flows[symbol] = self._published_flows(symbol)
                symbol_flows = published.through(bar_time)
            else:
                symbol_flows = ()  # most rules read no flows: nothing to look up
            truncated = truncated_since.get(symbol)
            # One context per symbol, kept while what it holds stays the same: its window is the symbol's own
            # (appended after the rules stepped); a new one when an event was added (each rule sees what the
            # rules before it fired on this very bar, e.g. a flip that confirms a follow-through).
            ctx = lane.context
            if (ctx is None or ctx.cycle_events is not cycle or ctx.recent_events is not earlier_events
                    or ctx.flows is not symbol_flows or ctx.truncated_since != truncated):
                ctx = lane.context = RuleContext(
                    recent=window, truncated_since=truncated, cycle_events=cycle, recent_events=earlier_events,
                    bars_of=self._bars_of, flows=symbol_flows)
            if final:
                for slot in lane.slots:
                    seen = slot.seen
                    if seen is not None and bar_time <= seen:
                        continue
                    # step_rule, inlined for the final bar (the hot path): the step's state is committed.
                    slot.state, events = slot.step(slot.state, symbol, bar, ctx)
                    slot.seen = bar_time
                    dirty[slot] = now
                    if events:
                        cycle, ctx = self._fired(events, slot, lane, cycle, bar, now, live_since, report)
                window.append(bar)
                bars = new_bars.get(symbol)
                if bars is None:
                    new_bars[symbol] = [bar]
                else:
                    bars.append(bar)
                taken += 1
            else:
                for slot in lane.slots:
                    _, events = step_rule(slot.rule, slot.state, symbol, bar, ctx)
                    if events:
                        cycle, ctx = self._fired(events, slot, lane, cycle, bar, now, live_since, report)
        report.bars += taken

    def _note_revision(self, symbol: str, bar: Bar, window: deque[Bar]) -> None:
        """Log, once, that the source changed the close of a final bar the rules already evaluated."""
        for held in reversed(window):
            if held.time <= bar.time:
                break
        else:
            return
        if held.time != bar.time or held.close == bar.close:
            return
        said = (symbol, bar.time, bar.close)
        if said not in self._revisions_said:
            if len(self._revisions_said) >= REVISIONS_REMEMBERED:
                self._revisions_said.clear()  # a bot run for months: at worst one revision is said again
            self._revisions_said.add(said)
            log.info("%s's %s bar was revised by its source after the rules had evaluated it (close %s → %s): "
                     "kept as first evaluated, so no alert is decided twice", symbol, bar.time.date().isoformat(),
                     format_price(held.close), format_price(bar.close))

    def _fired(self, events: Sequence[AlertEvent], slot: _Slot, lane: _Lane, cycle: tuple[AlertEvent, ...],
               bar: Bar, now: datetime, live_since: datetime,
               report: IngestReport) -> tuple[tuple[AlertEvent, ...], RuleContext]:
        """Record a rule's events on a bar; return the cycle's events with them, and the lane's context that
        shows them to the rules after it."""
        for event in events:
            cycle = (*cycle, event)
            if self._record(event, bar, now, live_since, report, slot.policy):
                self.recent_events().append(event)  # for later cycles: other feeds' polls
                self._earlier = None
        assert lane.context is not None  # set before the lane's rules step
        ctx = lane.context = replace(lane.context, cycle_events=cycle)
        return cycle, ctx

    def _earlier_events(self) -> tuple[AlertEvent, ...]:
        if self._earlier is None:
            self._earlier = tuple(self.recent_events())
        return self._earlier

    def _bars_of(self, other: str) -> tuple[Bar, ...]:
        return tuple(self._windows.get(other, ()))

    def _record(self, event: AlertEvent, bar: Bar, now: datetime, live_since: datetime, report: IngestReport,
                policy: NotifyPolicy = ONCE) -> bool:
        """Record an event the notify policy lets through; return False when the policy held it back."""
        # A policy that never holds back a new event (the default: once, no cooldown) needs no last alert.
        if holds_back(policy) and not self.store.has_alert(event.dedup_key):
            last = self.store.last_alert(event.rule_id, event.symbol)
            # The stored key, not one recomputed from the row: it names the event exactly as it was recorded.
            before = LastAlert(last.dedup_key, last.bar_time, event_price(last.event())) if last else None
            decision = decide(policy, event, before)
            if not decision.notify:
                report.suppressed += 1
                log.info("%s on %s %s: %s (%s)", event.rule_id, event.symbol, event.bar_time.date(),
                         decision.reason, decision.detail)
                return False
        # A bar that closed before the bot went live is history: remember its events, send nothing.
        silent = bar.final and bar.close_time <= live_since
        recipients = () if silent else self.store.recipients(event, now)
        note = self.note_for(event)
        text = format_alert(event, [note] if note else [])
        alert_id = self.store.record_alert(event, text, now, recipients, silent=silent)
        if alert_id is None:
            report.duplicates += 1
        elif silent:
            report.silent += 1
        else:
            report.alerts.append((alert_id, event))
            self.fired[(event.rule_id, event.symbol)] += 1
        return True


class _Slot:
    """One rule on one symbol as the engine steps it: the rule, its notify policy and its committed state."""

    __slots__ = ("rule", "rule_id", "policy", "step", "symbol", "state", "seen", "_encoded")

    def __init__(self, binding: RuleBinding, symbol: str, state: Mapping[str, Any] | None,
                 seen: datetime | None) -> None:
        self.rule, self.rule_id, self.policy = binding.rule, binding.rule.rule_id, binding.policy
        self.step = binding.rule.step  # bound once: called on every final bar
        self.symbol, self.state, self.seen = symbol, state, seen  # seen: the last final bar the rule stepped
        self._encoded: tuple[Mapping[str, Any] | None, str | None] | None = None  # a state and its JSON text

    def state_text(self) -> str | None:
        """Return the state as JSON text, encoded again only when the rule returned a new state object.

        A rule never changes a state in place (a step that changes nothing returns the one it was given), so
        the same object has the same text.
        """
        encoded = self._encoded
        if encoded is None or encoded[0] is not self.state:
            encoded = self._encoded = (self.state, json.dumps(self.state) if self.state is not None else None)
        return encoded[1]


class _Lane:
    """A symbol as the engine steps it: its window of final bars, its rules, and the context they last read."""

    __slots__ = ("window", "slots", "reads_flows", "context")

    def __init__(self, window: deque[Bar], slots: list[_Slot]) -> None:
        self.window, self.slots = window, slots
        self.reads_flows = any(slot.rule.reads_flows for slot in slots)
        self.context: RuleContext | None = None  # kept while what it holds stays the same (see Engine._ingest)


class _Published:
    """Hold a fund's flows as read once for a batch, cut at each bar's time (no bar sees a later day's)."""

    def __init__(self, flows: Sequence[tuple[datetime, float]]) -> None:
        self.flows = flows
        self.times = [t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc) for t, _ in flows]
        self._cut: tuple[int, Sequence[tuple[datetime, float]]] = (len(flows), flows)

    def through(self, moment: datetime) -> Sequence[tuple[datetime, float]]:
        """Return the flows dated at or before `moment` (all of them, uncopied, live).

        Consecutive bars between two flow days get the same cut (the same object), so a rule's index of it
        and the symbol's context are kept, not rebuilt bar by bar.
        """
        times = self.times
        if not times or times[-1] <= moment:
            return self.flows
        end, cut = self._cut
        # Bars come in time order: most fall between the same two flow days as the bar before.
        if end < len(times) and times[end] > moment and (end == 0 or times[end - 1] <= moment):
            return cut
        end = bisect.bisect_right(times, moment)
        self._cut = (end, self.flows[:end])
        return self._cut[1]
