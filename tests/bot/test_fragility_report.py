"""The fragility line beside a small-cap symbol: in /status, and appended to its new-high alerts."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from alerts.bars import Bar
from alerts.fragility import FragilityFigures
from bot.config import parse_config
from bot.engine import Engine
from bot.fragility_report import alert_note, status_lines
from storage.fragility import FragilityStore

CONFIG = """
feeds:
  history: {kind: replay, path: /tmp/unused}
  fragility: {kind: fragility, funds: {IWM: {}}}
symbols:
  - {id: "^RUT", feed: history}
  - {id: BTC, feed: history, asset_class: crypto}
  - {id: "IWM:UNPROFITABLE", feed: fragility, asset_class: breadth}
rules:
  - {id: rut_ath, kind: new_ath, symbols: ["^RUT", BTC], min_history_days: 0}
"""
SNAPSHOT_DAY = datetime(2026, 9, 19, 21, tzinfo=timezone.utc)
LINE = "Unprofitable members: 41 % (by count), 18 % of index weight, as of 2026-09-19 (coverage 97 %)"


@pytest.fixture
def config():
    return parse_config(CONFIG, env={})


def take_snapshot(store, finished_at: datetime, status: str = "complete") -> None:
    table = FragilityStore(store)
    snapshot_id = table.start("IWM", date(2026, 9, 18), [("AAA", "AAA", "A", 1.0)], finished_at - timedelta(hours=1))
    table.finish(snapshot_id, FragilityFigures(1967, 1903, 780, 41.0, 18.2, 97.3), status, "", finished_at)


def rising(days: int, start: datetime) -> list[Bar]:
    return [Bar(start + timedelta(days=n), 100 + n, 101 + n, 99 + n, 100.5 + n) for n in range(days)]


def test_status_of_the_index_shows_the_share_of_members_losing_money(store, config):
    take_snapshot(store, SNAPSHOT_DAY)
    assert status_lines(store, config, "^RUT", SNAPSHOT_DAY) == [LINE]
    assert status_lines(store, config, "IWM", SNAPSHOT_DAY) == [LINE]
    assert status_lines(store, config, "BTC", SNAPSHOT_DAY) == []


def test_status_says_when_there_is_no_complete_snapshot_yet_and_one_is_running(store, config):
    take_snapshot(store, SNAPSHOT_DAY, status="incomplete")
    (line,) = status_lines(store, config, "^RUT", SNAPSHOT_DAY)
    assert line.startswith("Unprofitable members: no complete snapshot of IWM yet (last try 2026-09-19")
    FragilityStore(store).start("IWM", date(2026, 9, 25), [("AAA", "AAA", "A", 1.0), ("BBB", "BBB", "B", 1.0)],
                                SNAPSHOT_DAY + timedelta(days=7))
    assert status_lines(store, config, "^RUT", SNAPSHOT_DAY) == [
        "Fragility snapshot of IWM in progress: 0 of 2 members read"]


def test_a_new_high_on_a_small_cap_symbol_carries_the_line_and_a_coin_does_not(store, config):
    take_snapshot(store, SNAPSHOT_DAY)
    engine = Engine(store, config.bindings(), ["^RUT", "BTC"], note_for=lambda e: alert_note(store, config, e))
    bars = rising(12, datetime(2026, 9, 10, tzinfo=timezone.utc))
    report = engine.ingest({"^RUT": bars, "BTC": bars}, SNAPSHOT_DAY, live_since=datetime(2026, 9, 1,
                                                                                        tzinfo=timezone.utc))
    texts = {(a.symbol, f"{a.bar_time:%Y-%m-%d}"): a.text for a in store.recent_alerts(50)}
    assert report.alerts
    assert LINE in texts[("^RUT", "2026-09-21")] and LINE in texts[("^RUT", "2026-09-19")]
    # No look-ahead: a high before the snapshot's day says nothing of it.
    assert "Unprofitable" not in texts[("^RUT", "2026-09-18")]
    assert not any("Unprofitable" in text for (symbol, _), text in texts.items() if symbol == "BTC")


def test_a_snapshot_over_a_month_old_is_not_appended(store, config):
    take_snapshot(store, SNAPSHOT_DAY)
    engine = Engine(store, config.bindings(), ["^RUT"], note_for=lambda e: alert_note(store, config, e))
    bars = rising(3, SNAPSHOT_DAY.replace(hour=0) + timedelta(days=30))  # the first bar only sets the high
    engine.ingest({"^RUT": bars}, SNAPSHOT_DAY, live_since=datetime(2026, 9, 1, tzinfo=timezone.utc))
    texts = {f"{a.bar_time:%Y-%m-%d}": a.text for a in store.recent_alerts(50)}
    assert LINE in texts["2026-10-20"] and "Unprofitable" not in texts["2026-10-21"]


def test_status_of_the_series_reads_as_a_share_not_a_price(store, config):
    from types import SimpleNamespace

    from bot.commands.status import symbol_line

    week = datetime(2026, 9, 12, tzinfo=timezone.utc)
    store.upsert_bars("IWM:UNPROFITABLE", [Bar(week, 38.4, 38.4, 38.4, 38.4),
                                           Bar(week + timedelta(days=7), 41.0, 41.0, 41.0, 41.0)])
    runtime = SimpleNamespace(store=store, config=config, feeds={}, health={})
    line = symbol_line(runtime, config.symbol("IWM:UNPROFITABLE"), SNAPSHOT_DAY)
    assert line == "IWM:UNPROFITABLE: 41.0 % on 2026-09-19, +2.6 points since 2026-09-12"


async def test_an_admin_asks_for_a_snapshot_now_and_the_feed_starts_one_at_its_next_poll(store):
    from types import SimpleNamespace

    from bot.feeds.fragility import FragilityFeed, FragilitySettings
    from bot.fragility_report import request_snapshot

    feed = FragilityFeed("fragility", FragilitySettings(funds={"IWM": {}, "IWN": {}}), store=store)
    take_snapshot(store, SNAPSHOT_DAY)  # IWM's last one is a day old: not due for six more days
    runtime = SimpleNamespace(feeds={"fragility": feed})
    assert feed.next_poll_time(SNAPSHOT_DAY + timedelta(days=1)) is None  # IWN has never had one: due now
    with pytest.raises(ValueError, match="Unknown fund 'QQQ'. Known: IWM, IWN"):
        request_snapshot(runtime, "QQQ")
    reply = request_snapshot(runtime, "iwm")
    assert reply.startswith("A snapshot of IWM starts at the next poll: one Yahoo request every 2 s")
    assert feed._requested == {"IWM"}
    assert "No fragility feed" in request_snapshot(SimpleNamespace(feeds={}), None)


HISTORY = ("date,unprofitable_pct_count,unprofitable_pct_weight,coverage_pct\n"
           "2007-06-29,18.5,9.0,95\n2024-06-28,41.2,17.8,97\n")


def test_the_backtest_reads_the_series_from_a_fragility_csv(tmp_path):
    from bot.backtest import load_csv_history

    (tmp_path / "IWM-UNPROFITABLE.csv").write_text(HISTORY)
    config = parse_config(CONFIG.replace('asset_class: breadth}', 'asset_class: breadth, csv: IWM-UNPROFITABLE}'),
                          env={})
    history = load_csv_history(config, tmp_path)
    assert [(b.time.date(), b.close) for b in history.bars["IWM:UNPROFITABLE"]] == [
        (date(2007, 6, 29), 18.5), (date(2024, 6, 28), 41.2)]


async def test_a_live_backtest_imports_the_history_and_takes_no_snapshot(tmp_path):
    from bot.backtest import fetch_live_history

    (tmp_path / "history.csv").write_text(HISTORY)
    text = CONFIG.replace("fragility: {kind: fragility, funds: {IWM: {}}}",
                          f'fragility: {{kind: fragility, ishares_base_url: "http://127.0.0.1:9", '
                          f'funds: {{IWM: {{csv: "{tmp_path / "history.csv"}"}}}}}}')
    text = text.replace('  - {id: "^RUT", feed: history}\n  - {id: BTC, feed: history, asset_class: crypto}\n', "")
    text = text.replace('symbols: ["^RUT", BTC]', 'symbols: ["IWM:UNPROFITABLE"]')
    config = parse_config(text.replace("kind: new_ath", "kind: unprofitable_share, levels: [40]")
                          .replace(", min_history_days: 0", ""), env={})
    history = await fetch_live_history(config, tmp_path / "cache.db", now=SNAPSHOT_DAY)
    assert [b.close for b in history.bars["IWM:UNPROFITABLE"]] == [18.5, 41.2]
    assert not any("fragility" in problem for problem in history.problems)


def test_health_waits_for_the_first_snapshot_but_flags_a_fund_that_never_completes(store, config):
    from types import SimpleNamespace

    from bot.feeds.fragility import FragilityFeed, FragilitySettings
    from bot.health import degraded_reasons
    from bot.runtime import FeedHealth

    feed = FragilityFeed("fragility", FragilitySettings(), store=store)
    runtime = SimpleNamespace(config=config, store=store, feeds={"fragility": feed},
                              health={"fragility": FeedHealth(last_ok=SNAPSHOT_DAY)}, channel_retries=lambda: {})
    assert not any("UNPROFITABLE" in r for r in degraded_reasons(runtime, SNAPSHOT_DAY))  # a snapshot takes time
    feed.tracker.failed("IWM", SNAPSHOT_DAY, "coverage 61.0% of weight (need 90%)")
    later = SNAPSHOT_DAY + timedelta(days=11)
    assert any("IWM:UNPROFITABLE is stale" in r and "coverage 61.0%" in r for r in degraded_reasons(runtime, later))
