"""Store: dedup forever, alert + outbox in one transaction, subscriptions and mutes, file permissions."""

from __future__ import annotations

import os
import stat
from datetime import timedelta

import pytest

from alerts.bars import Bar, utc
from alerts.events import AlertEvent
from storage import Store
from storage.db import StorageError

NOW = utc(2024, 11, 25, 21)
EVENT = AlertEvent("rut_ath", "new_ath", "^RUT", utc(2024, 11, 25), {"price": 2466.49})


def test_an_alert_is_recorded_once_ever(store):
    first = store.record_alert(EVENT, "text", NOW)
    again = store.record_alert(EVENT, "text", NOW + timedelta(days=3))
    assert first is not None and again is None
    assert store.alert_count() == 1


def test_dedup_survives_reopening_the_file(tmp_path):
    path = tmp_path / "riskon.db"
    db = Store.open(path)
    db.subscribe("console", "stdout")
    assert db.record_alert(EVENT, "text", NOW, db.active_subscriptions()) is not None
    db.close()
    reopened = Store.open(path)
    assert reopened.record_alert(EVENT, "text", NOW, reopened.active_subscriptions()) is None
    assert reopened.outbox_counts()["pending"] == 1


def test_alert_and_outbox_rows_commit_together_or_not_at_all(store):
    subs = [store.subscribe("telegram", str(chat)) for chat in (1, 2, 3)]
    # A real database fault on the second write: the deliveries table refuses inserts.
    store.db.execute(
        "create trigger refuse_deliveries before insert on deliveries begin select raise(abort, 'disk full'); end"
    )
    with pytest.raises(StorageError, match="disk full"):
        store.record_alert(EVENT, "text", NOW, subs)
    assert store.alert_count() == 0 and store.outbox_counts()["pending"] == 0
    store.db.execute("drop trigger refuse_deliveries")
    assert store.record_alert(EVENT, "text", NOW, subs) is not None
    assert store.outbox_counts()["pending"] == 3


def test_silent_alerts_are_remembered_but_owe_nothing(store):
    store.subscribe("console", "stdout")
    assert store.record_alert(EVENT, "text", NOW, store.active_subscriptions(), silent=True) is not None
    assert store.outbox_counts()["pending"] == 0
    assert store.recent_alerts() == []
    assert store.has_alert(EVENT.dedup_key)


def test_delivery_states_move_pending_retrying_sent_and_failed(store):
    a, b = store.subscribe("telegram", "1"), store.subscribe("telegram", "2")
    store.record_alert(EVENT, "text", NOW, [a, b])
    first, second = store.due_deliveries(NOW)
    store.mark_retry(first.id, NOW + timedelta(minutes=5), "429")
    store.mark_failed(second.id, "chat not found")
    assert store.due_deliveries(NOW) == []
    [due] = store.due_deliveries(NOW + timedelta(minutes=5))
    assert due.status == "retrying" and due.attempts == 1
    store.mark_sent(due.id, NOW)
    assert store.outbox_counts() == {"pending": 0, "sent": 1, "retrying": 0, "failed": 1}


def test_filters_and_mutes_decide_recipients(store):
    everything = store.subscribe("telegram", "1")
    btc_only = store.subscribe("telegram", "2", symbols=["BTC"])
    muted = store.subscribe("telegram", "3")
    store.mute(muted.id, NOW + timedelta(hours=1), symbol="^RUT")
    assert [s.id for s in store.recipients(EVENT, NOW)] == [everything.id]
    assert btc_only.id not in [s.id for s in store.recipients(EVENT, NOW)]
    assert muted.id in [s.id for s in store.recipients(EVENT, NOW + timedelta(hours=2))]


def test_a_topic_is_its_own_subscription(store):
    group = store.subscribe("telegram", "-100", "")
    topic = store.subscribe("telegram", "-100", "7")
    assert group.id != topic.id
    store.subscribe("telegram", "-100", "7", rules=["rut_ath"])
    assert len(store.active_subscriptions()) == 2


def test_bars_upsert_by_symbol_interval_and_time(store):
    day = utc(2024, 1, 2)
    store.upsert_bars("^RUT", [Bar(day, 1, 2, 0.5, 1.5, 10)])
    store.upsert_bars("^RUT", [Bar(day, 1, 3, 0.5, 2.5, 11), Bar(day + timedelta(days=1), 2, 3, 1, 2, 5)])
    bars = store.load_bars("^RUT")
    assert [b.close for b in bars] == [2.5, 2]
    assert store.last_bar_time("^RUT") == day + timedelta(days=1)
    assert [b.close for b in store.recent_bars("^RUT", 1)] == [2]


def test_forming_bars_are_never_cached(store):
    store.upsert_bars("BTC", [Bar(utc(2024, 1, 2), 1, 2, 0.5, 1.5, final=False)])
    assert store.load_bars("BTC") == []


def test_rule_state_round_trips(store):
    store.save_rule_state("rut_ath", "^RUT", {"ath": 2442.74}, utc(2021, 11, 8), NOW)
    assert store.rule_state("rut_ath", "^RUT") == ({"ath": 2442.74}, utc(2021, 11, 8))
    assert store.rule_state("rut_ath", "IWM") == (None, None)


def test_database_file_is_private_and_in_wal_mode(tmp_path):
    path = tmp_path / "sub" / "riskon.db"
    db = Store.open(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert db.db.execute("pragma journal_mode").fetchone()[0] == "wal"
    db.close()


def test_a_replay_database_checkpoints_its_log_rarely_and_the_live_one_as_sqlite_does(tmp_path):
    """Each checkpoint syncs to disk: a replay's store (durable=False) takes one every 10,000 pages, not 1,000."""
    replay = Store.open(tmp_path / "replay.db", durable=False)
    live = Store.open(tmp_path / "live.db")
    assert replay.db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 10_000
    assert live.db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1_000
    replay.close()
    live.close()


def test_migrations_apply_once(tmp_path):
    path = tmp_path / "riskon.db"
    Store.open(path).close()
    db = Store.open(path)
    names = [row["name"] for row in db.db["migrations"].rows]
    assert len(names) == len(set(names)) and names[0] == "0001_core"


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "riskon.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="cannot open database"):
        Store.open(path)


def test_a_chat_newer_alert_waits_behind_an_older_one_that_waits_to_retry(store):
    chat, other = store.subscribe("telegram", "1"), store.subscribe("telegram", "2")
    older = AlertEvent("rut_ath", "new_ath", "^RUT", utc(2024, 11, 25), {"price": 1.0})
    newer = AlertEvent("rut_ath", "new_ath", "^RUT", utc(2024, 11, 26), {"price": 2.0})
    store.record_alert(older, "older", NOW, [chat, other])
    first = [d for d in store.due_deliveries(NOW) if d.chat_id == "1"][0]
    store.mark_retry(first.id, NOW + timedelta(minutes=10), "429")
    store.record_alert(newer, "newer", NOW + timedelta(minutes=1), [chat, other])
    due = store.due_deliveries(NOW + timedelta(minutes=1))
    assert [(d.chat_id, d.text) for d in due] == [("2", "older"), ("2", "newer")]
    later = store.due_deliveries(NOW + timedelta(minutes=10))
    assert [(d.chat_id, d.text) for d in later if d.chat_id == "1"] == [("1", "older"), ("1", "newer")]


def test_recorded_alerts_read_back_as_typed_rows_that_give_back_their_event(store):
    later = AlertEvent("rut_flip", "resistance_flip", "^RUT", utc(2024, 11, 26), {"level": 2442.74}, "2442.74")
    store.record_alert(EVENT, "first text", NOW)
    store.record_alert(later, "second text", NOW + timedelta(days=1))
    newest, oldest = store.recent_alerts()
    assert (newest.rule_id, newest.bar_time, newest.text, newest.dedup_key) == (
        "rut_flip", utc(2024, 11, 26), "second text", later.dedup_key)
    assert newest.fired_at == NOW + timedelta(days=1)
    assert oldest.event() == EVENT
    assert store.last_alert("rut_flip", "^RUT") == newest and store.last_alert("rut_flip", "BTC") is None


def test_mutes_and_feed_polls_read_back_as_typed_rows(store):
    subscription = store.subscribe("telegram", "1")
    store.mute(subscription.id, NOW + timedelta(hours=6), symbol="BTC")
    assert [(m.rule_id, m.symbol, m.until) for m in store.mutes(subscription.id, NOW)] == [
        (None, "BTC", NOW + timedelta(hours=6))]
    store.record_poll("yahoo", NOW)
    store.record_poll("binance", NOW, "ConnectionError: refused")
    store.record_poll("binance", NOW + timedelta(minutes=1), "ConnectionError: refused")
    yahoo, binance = store.feed_health()
    assert (yahoo.feed, yahoo.last_ok_at, yahoo.failures) == ("yahoo", NOW, 0)
    assert (binance.last_ok_at, binance.last_error_at, binance.failures) == (None, NOW + timedelta(minutes=1), 2)
    assert binance.last_error == "ConnectionError: refused"


def test_current_flows_are_read_again_after_any_write_to_them_from_either_connection(tmp_path):
    engine_side, feed_side = Store.open(tmp_path / "riskon.db"), Store.open(tmp_path / "riskon.db")
    day = utc(2024, 11, 25)
    assert engine_side.current_flows("IWM") == ()
    feed_side.upsert_flows("IWM", [(day, -5e8, None, None, "ishares")], NOW)  # the flows feed's connection
    assert engine_side.current_flows("IWM") == ((day, -5e8),)
    same = engine_side.current_flows("IWM")
    assert engine_side.current_flows("IWM") is same  # nothing written since: not read again
    engine_side.upsert_flows("IWM", [(day + timedelta(days=1), 2e8, None, None, "ishares")], NOW)
    assert engine_side.current_flows("IWM") == ((day, -5e8), (day + timedelta(days=1), 2e8))
    engine_side.delete_flows("IWM", [day])
    assert engine_side.current_flows("IWM") == ((day + timedelta(days=1), 2e8),)
    feed_side.delete_flows("IWM", [day + timedelta(days=1)])
    assert engine_side.current_flows("IWM") == ()
    engine_side.close()
    feed_side.close()


MUTED_BEFORE = ("select subscription_id from mutes where until > ? and (rule_id is null or rule_id = ? or rule_id = ?) "
                "and (symbol is null or symbol = ?)")  # the query recipients() ran per alert before reading mutes once


@pytest.mark.parametrize("rule", [None, "rut_ath", "new_ath", "btc_ath"])
@pytest.mark.parametrize("symbol", [None, "^RUT", "BTC"])
@pytest.mark.parametrize("hours", [-1, 0, 1])
def test_mutes_read_once_decide_as_the_query_per_alert_did(store, rule, symbol, hours):
    now = utc(2025, 3, 3, 21)
    event = AlertEvent("rut_ath", "new_ath", "^RUT", utc(2025, 3, 3), {"price": 2400.0})
    muted, other = store.subscribe("telegram", "1"), store.subscribe("telegram", "2")
    store.mute(muted.id, now + timedelta(hours=hours), rule, symbol)
    by_query = {row[0] for row in store.db.execute(MUTED_BEFORE, [now.isoformat(), "rut_ath", "new_ath", "^RUT"])}
    expected = [s.id for s in (muted, other) if s.id not in by_query]
    assert [s.id for s in store.recipients(event, now)] == expected
    with store.transaction():  # read once for the transaction
        assert [s.id for s in store.recipients(event, now)] == expected
        assert [s.id for s in store.recipients(event, now)] == expected


def test_recipients_read_once_in_a_transaction_follow_its_own_changes(store):
    now = utc(2025, 3, 3, 21)
    event = AlertEvent("rut_ath", "new_ath", "^RUT", utc(2025, 3, 3), {"price": 2400.0})
    first, second = store.subscribe("telegram", "1"), store.subscribe("telegram", "2", rules=["rut_ath"])

    def recipients() -> list[str]:
        return [s.chat_id for s in store.recipients(event, now)]

    with store.transaction():
        assert recipients() == ["1", "2"]
        store.mute(first.id, now + timedelta(hours=1), symbol="^RUT")
        assert recipients() == ["2"]
        store.deactivate_subscription(second.id, "chat gone")
        assert recipients() == []
        store.unmute(first.id)
        assert recipients() == ["1"]
        store.subscribe("discord", "3")
        assert recipients() == ["1", "3"]
    store.db.execute("update subscriptions set active = 0 where chat_id = '3'")  # another writer, between batches
    with store.transaction():
        assert recipients() == ["1"]


def test_waiting_channels_read_only_the_waiting_rows_not_a_long_outbox_history(store):
    # A bot that has run for years holds thousands of sent rows: the first drain of a start must not read them
    # all on the event loop to find the few that wait. Work is counted in SQLite VM steps, not timed.
    telegram, discord = store.subscribe("telegram", "1"), store.subscribe("discord", "2")
    for day in range(3000):
        store.record_alert(AlertEvent("rut_ath", "new_ath", "^RUT", NOW - timedelta(days=day + 1), {"price": 1.0}),
                           "text", NOW, [telegram])
    for delivery in store.due_deliveries(NOW, limit=5000):
        store.mark_sent(delivery.id, NOW)
    store.record_alert(EVENT, "text", NOW, [telegram, discord])
    steps = []
    store.db.conn.set_progress_handler(lambda: steps.append(1) and 0, 100)
    try:
        waiting, top = store.waiting_channels()
    finally:
        store.db.conn.set_progress_handler(None, 100)
    assert waiting == {"telegram", "discord"}
    assert top == store.db.execute("select max(id) from deliveries").fetchone()[0]
    assert len(steps) < 20, f"{len(steps) * 100} SQLite steps to find 2 waiting rows among 3,002"
    assert store.waiting_channels(top) == (set(), top)  # nothing new since: nothing found, the mark kept
