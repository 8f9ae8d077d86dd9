"""A final bar revised by its source after the rules stepped over it: kept as first evaluated, and said once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from alerts.bars import Bar
from bot.config import load_config
from bot.engine import REVISIONS_REMEMBERED, Engine
from storage import Store
from tests.conftest import REPO

LIVE_SINCE = datetime(2020, 1, 1, tzinfo=timezone.utc)
THURSDAY = datetime(2026, 11, 26, tzinfo=timezone.utc)


def bar(day: datetime, close: float) -> Bar:
    """Return a final daily bar closing at `close`."""
    return Bar(day, close - 1, close + 1, close - 2, close, 1_000.0)


def engine(store: Store) -> Engine:
    config = load_config(REPO / "config.yaml")
    return Engine(store, config.bindings(), [s.id for s in config.symbols], flows_of=store.load_flows)


def test_a_revised_close_of_a_bar_already_evaluated_is_kept_as_first_seen_and_logged_once(caplog):
    store = Store.memory()
    store.subscribe("console", "stdout")
    riskon = engine(store)
    days = [THURSDAY - timedelta(days=n) for n in range(3, -1, -1)]
    riskon.ingest({"^RUT": [bar(day, 2400.0 + n) for n, day in enumerate(days)]}, THURSDAY + timedelta(days=1),
                  LIVE_SINCE)
    states_before = store.db.execute("select * from rule_state order by rule_id, symbol").fetchall()
    alerts_before = store.db.execute("select count(*) from alerts").fetchone()

    revised = [bar(day, 2400.0 + n) for n, day in enumerate(days[:-1])] + [bar(THURSDAY, 2450.0)]
    with caplog.at_level(logging.INFO, logger="bot.engine"):
        for minute in range(3):  # the next polls ask Yahoo's 5-day range again: the same revision each time
            riskon.ingest({"^RUT": revised}, THURSDAY + timedelta(days=1, minutes=minute + 1), LIVE_SINCE)

    said = [r.getMessage() for r in caplog.records if "revised" in r.getMessage()]
    assert said == ["^RUT's 2026-11-26 bar was revised by its source after the rules had evaluated it "
                    "(close 2,403.00 → 2,450.00): kept as first evaluated, so no alert is decided twice"]
    assert store.recent_bars("^RUT", 1)[0].close == 2403.0
    assert store.db.execute("select * from rule_state order by rule_id, symbol").fetchall() == states_before
    assert store.db.execute("select count(*) from alerts").fetchone() == alerts_before


def test_the_same_bar_polled_again_unchanged_says_nothing(caplog):
    store = Store.memory()
    riskon = engine(store)
    bars = [bar(THURSDAY - timedelta(days=1), 2400.0), bar(THURSDAY, 2401.0)]
    with caplog.at_level(logging.DEBUG, logger="bot.engine"):
        for minute in range(3):
            riskon.ingest({"^RUT": bars}, THURSDAY + timedelta(days=1, minutes=minute), LIVE_SINCE)
    assert not [r for r in caplog.records if "revised" in r.getMessage()]


def test_the_revisions_remembered_are_bounded_for_a_bot_run_for_months(caplog):
    store = Store.memory()
    riskon = engine(store)
    riskon.ingest({"^RUT": [bar(THURSDAY, 2400.0)]}, THURSDAY + timedelta(days=1), LIVE_SINCE)
    closes = [2401.0 + n for n in range(REVISIONS_REMEMBERED + 1)] + [2401.0]  # the first revision comes back
    with caplog.at_level(logging.INFO, logger="bot.engine"):
        for n, close in enumerate(closes):
            riskon.ingest({"^RUT": [bar(THURSDAY, close)]}, THURSDAY + timedelta(days=1, minutes=n + 1), LIVE_SINCE)
    # Each said once while remembered; the memory of them is bounded, so the first is said again after 1,000 others.
    assert len([r for r in caplog.records if "revised" in r.getMessage()]) == len(closes)
