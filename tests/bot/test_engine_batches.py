"""Batched ingest: many polls in one transaction record exactly what the same polls ingested one by one record."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alerts.bars import Bar
from alerts.evaluate import RuleBinding
from alerts.events import AlertEvent
from alerts.rules.base import Rule, RuleContext, RuleParams, RuleStep
from bot.config import load_config
from bot.engine import Engine
from bot.feeds.replay import read_daily_csv
from storage import Store
from tests.conftest import REPO

# Leaders and followers of the shipped config, with real history: every rule kind sees real moves.
FILES = {"^RUT": "RUT", "IWM": "IWM", "IWN": "IWN", "BTC": "BTC-USD", "ETH": "ETH-USD"}
LIVE_SINCE = datetime(2019, 1, 1, tzinfo=timezone.utc)


def daily_polls(market_data, start: str = "2017-01-01", end: str = "2022-12-31"):
    """Return one poll per day (bars of that day by symbol, and the poll's clock), oldest first."""
    days: dict[datetime, dict[str, list]] = {}
    for symbol, stem in FILES.items():
        bars, problems = read_daily_csv(market_data / f"{stem}.csv")
        assert not problems
        for bar in bars:
            if start <= bar.time.date().isoformat() <= end:
                days.setdefault(bar.time, {})[symbol] = [bar]
    return [(days[day], day + timedelta(days=1)) for day in sorted(days)]


def engine(store: Store) -> Engine:
    config = load_config(REPO / "config.yaml")
    return Engine(store, config.bindings(), [s.id for s in config.symbols], flows_of=store.load_flows)


def recorded(store: Store) -> dict[str, list]:
    db = store.db
    return {
        "alerts": db.execute("select dedup_key, rule_id, kind, symbol, bar_time, values_json, text, fired_at, silent "
                             "from alerts order by dedup_key").fetchall(),
        "deliveries": db.execute("select alert_id, chat_id, status from deliveries order by id").fetchall(),
        "states": db.execute("select rule_id, symbol, state_json, last_bar_time, updated_at from rule_state "
                             "order by rule_id, symbol").fetchall(),
        "bars": db.execute("select symbol, time, open, high, low, close, volume from bars order by symbol, time")
        .fetchall(),
    }


@pytest.mark.parametrize("batch", [7, 10_000])
def test_polls_in_batches_record_what_polls_one_by_one_record(market_data, batch):
    polls = daily_polls(market_data)
    one_by_one, batched = Store.memory(), Store.memory()
    for store in (one_by_one, batched):
        store.subscribe("console", "stdout")
    single = engine(one_by_one)
    for bars, now in polls:
        single.ingest(bars, now, LIVE_SINCE)
    many = engine(batched)
    for first in range(0, len(polls), batch):
        many.ingest_cycles(polls[first:first + batch], LIVE_SINCE)
    expected = recorded(one_by_one)
    assert len(expected["alerts"]) > 20  # the years hold new highs, flips, drawdowns and follow-throughs
    assert recorded(batched) == expected
    assert many.fired == single.fired


def test_a_batch_stops_after_the_first_poll_that_records_an_alert(store, market_data):
    polls = daily_polls(market_data)
    store.subscribe("console", "stdout")
    report = engine(store).ingest_cycles(polls, LIVE_SINCE, until_alert=True)
    assert report.alerts and report.cycles < len(polls)
    last_bars, _ = polls[report.cycles - 1]
    day = next(iter(last_bars.values()))[0].time
    assert {event.bar_time for _, event in report.alerts} == {day}
    assert max(store.last_bar_time(symbol) or LIVE_SINCE for symbol in FILES) == day


def test_a_failed_batch_leaves_nothing_half_written(store, market_data):
    polls = daily_polls(market_data, "2021-01-01", "2021-12-31")
    store.subscribe("console", "stdout")
    failing = [False]

    def flows(symbol):
        if failing[0]:
            raise RuntimeError("flows unreadable")
        return store.load_flows(symbol)

    config = load_config(REPO / "config.yaml")
    batch_engine = Engine(store, config.bindings(), [s.id for s in config.symbols], flows_of=flows)
    batch_engine.ingest_cycles(polls[:100], LIVE_SINCE)
    before = recorded(store)
    failing[0] = True
    with pytest.raises(RuntimeError):
        batch_engine.ingest_cycles(polls[100:], LIVE_SINCE)
    assert recorded(store) == before
    # Memory was reset with the rollback: the next batch carries on from what the database holds.
    failing[0] = False
    batch_engine.ingest_cycles(polls[100:], LIVE_SINCE)
    reference = Store.memory()
    reference.subscribe("console", "stdout")
    engine(reference).ingest_cycles(polls, LIVE_SINCE)
    assert recorded(store)["alerts"] == recorded(reference)["alerts"]


class FlowsSeen(Rule[RuleParams]):
    """Report, on every bar, the newest flow the engine showed the rule (a probe, not a trading rule)."""

    kind = "flows_seen"
    Params = RuleParams

    def step(self, state, symbol: str, bar: Bar, ctx: RuleContext) -> RuleStep:
        newest = ctx.flows[-1][0].date().isoformat() if ctx.flows else None
        return {}, (AlertEvent(self.rule_id, self.kind, symbol, bar.time, {"newest_flow": newest}),)


@pytest.mark.parametrize("bar_days, flow_days, expected", [
    ((2, 3, 4, 5), (3, 4, 5), [None, "2024-01-03", "2024-01-04", "2024-01-05"]),
    # Bars that skip flow days, two bars between the same two flow days, a bar after the last flow.
    ((2, 3, 6, 7, 9, 10), (3, 4, 5, 8, 9, 12), [None, "2024-01-03", "2024-01-05", "2024-01-05", "2024-01-09",
                                                 "2024-01-09"]),
])
def test_a_batch_of_days_shows_each_bar_only_the_flows_published_by_its_day(store, bar_days, flow_days, expected):
    days = [datetime(2024, 1, day, tzinfo=timezone.utc) for day in bar_days]
    # The batch's reader holds every flow, later days' too.
    flows = [(datetime(2024, 1, day, tzinfo=timezone.utc), -1e9) for day in flow_days]
    probe = Engine(store, [RuleBinding(FlowsSeen("probe", RuleParams()), ("IWM",))], ["IWM"],
                   flows_of=lambda fund: flows)
    polls = [({"IWM": [Bar(day, 200, 201, 199, 200)]}, day + timedelta(hours=22)) for day in days]
    report = probe.ingest_cycles(polls, datetime(2000, 1, 1, tzinfo=timezone.utc))
    seen = [event.values["newest_flow"] for _, event in report.alerts]
    assert seen == expected


def test_a_batch_says_which_alerts_each_poll_recorded(market_data):
    # A replay commits a batch of polls at once and then delivers each alerting poll's alerts on their own.
    polls = daily_polls(market_data)
    one_by_one, batched = Store.memory(), Store.memory()
    for store in (one_by_one, batched):
        store.subscribe("console", "stdout")
    single = engine(one_by_one)
    expected = []  # (polls taken up to and with it, the events it recorded)
    for number, (bars, now) in enumerate(polls, 1):
        alone = single.ingest(bars, now, LIVE_SINCE)
        if alone.alerts:
            expected.append((number, [event for _, event in alone.alerts]))
    report = engine(batched).ingest_cycles(polls, LIVE_SINCE)
    said, done = [], 0
    for cycles, alerts in report.alerting_cycles:
        said.append((cycles, [event for _, event in report.alerts[done:alerts]]))
        done = alerts
    assert len(expected) > 20
    assert said == expected
    assert done == len(report.alerts)
