"""The alerts the engine recorded and the outbox of deliveries owed to chats: record, claim, send, retry."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

from alerts.events import AlertEvent
from storage.base import StorageError, StoreBase, iso, parse_time
from storage.rows import RecordedAlert
from storage.subscriptions import Subscription

DELIVERY_STATUSES = ("pending", "sent", "retrying", "failed")


@dataclass(frozen=True)
class Delivery:
    """One alert owed to one chat, as the outbox holds it."""

    id: int
    alert_id: int
    subscription_id: int | None
    channel: str
    chat_id: str
    thread_id: str
    status: str
    attempts: int
    text: str
    event: AlertEvent
    # When the alert was recorded: alerts of one engine cycle share it, and go to a chat as one message.
    fired_at: datetime | None = None


class AlertOutbox(StoreBase):
    """Record alerts with their deliveries in one transaction, and track each delivery until sent or failed."""

    def record_alert(
        self,
        event: AlertEvent,
        text: str,
        now: datetime,
        subscriptions: Sequence[Subscription] = (),
        silent: bool = False,
    ) -> int | None:
        """Record an alert and its deliveries in one transaction; return its id, or None if already recorded."""
        conn = self.db.conn
        try:
            with self.transaction():  # one transaction: the alert and every outbox row, or nothing
                cursor = conn.execute(
                    "insert or ignore into alerts (dedup_key, rule_id, kind, symbol, bar_time, values_json, text, "
                    "fired_at, silent) values (?,?,?,?,?,?,?,?,?)",
                    [event.dedup_key, event.rule_id, event.kind, event.symbol, iso(event.bar_time),
                     json.dumps(dict(event.values), default=str), text, iso(now), int(silent)],
                )
                if cursor.rowcount == 0:
                    return None
                alert_id = cursor.lastrowid
                if not silent:
                    conn.executemany(
                        "insert or ignore into deliveries (alert_id, subscription_id, channel, chat_id, thread_id, "
                        "status, attempts, next_attempt_at, created_at) values (?,?,?,?,?,'pending',0,?,?)",
                        [(alert_id, s.id, s.channel, s.chat_id, s.thread_id, iso(now), iso(now))
                         for s in subscriptions],
                    )
                return alert_id
        except sqlite3.Error as exc:
            raise StorageError(f"could not record alert {event.dedup_key}: {exc}") from exc

    def has_alert(self, dedup_key: str) -> bool:
        """Say whether an alert with this key was ever recorded."""
        return self.db.execute("select 1 from alerts where dedup_key = ?", [dedup_key]).fetchone() is not None

    def last_alert(self, rule_id: str, symbol: str) -> RecordedAlert | None:
        """Return the newest recorded alert of a rule on a symbol, for the notify policy."""
        row = self.db.execute(
            f"select {_ALERT_COLUMNS} from alerts where rule_id = ? and symbol = ? "
            "order by bar_time desc, id desc limit 1",
            [rule_id, symbol],
        ).fetchone()
        return _recorded_alert(row) if row else None

    def recent_alerts(self, limit: int = 10, include_silent: bool = False) -> list[RecordedAlert]:
        """Return the newest recorded alerts, newest first."""
        where = "" if include_silent else "where silent = 0"
        rows = self.db.execute(
            f"select {_ALERT_COLUMNS} from alerts {where} order by bar_time desc, id desc limit ?", [limit],
        ).fetchall()
        return [_recorded_alert(row) for row in rows]

    def alert_count(self, include_silent: bool = False) -> int:
        """Return how many alerts were recorded."""
        where = "" if include_silent else "where silent = 0"
        return self.db.execute(f"select count(*) from alerts {where}").fetchone()[0]

    def due_deliveries(self, now: datetime, limit: int = 500, channels: Sequence[str] | None = None,
                       up_to_alert: int | None = None) -> list[Delivery]:
        """Return unclaimed pending or retrying deliveries whose time has come, oldest alert first (with
        `up_to_alert`, only those of alerts up to that id).

        A chat's alert waits while an older one for the same chat waits to retry or is being sent: alerts
        arrive in order.
        """
        only, only_args = "", list[object]()  # the channels a drain sends to; the alerts it sends now
        if channels is not None:
            only, only_args = f"and d.channel in ({','.join('?' * len(channels))}) ", [*channels]
        if up_to_alert is not None:
            only, only_args = only + "and d.alert_id <= ? ", [*only_args, up_to_alert]
        rows = self.db.execute(
            "select d.id, d.alert_id, d.subscription_id, d.channel, d.chat_id, d.thread_id, d.status, d.attempts, "
            "a.text, a.rule_id, a.kind, a.symbol, a.bar_time, a.values_json, a.fired_at "
            "from deliveries d join alerts a on a.id = d.alert_id "
            "where d.status in ('pending', 'retrying') and d.next_attempt_at <= ? and d.claimed_at is null "
            f"{only}and not exists (select 1 from deliveries e where e.channel = d.channel and e.chat_id = d.chat_id "
            "and e.thread_id = d.thread_id and e.status in ('pending', 'retrying') and e.alert_id < d.alert_id "
            "and (e.next_attempt_at > ? or e.claimed_at is not null)) "
            "order by d.alert_id, d.id limit ?",
            [iso(now), *only_args, iso(now), limit],
        ).fetchall()
        out = []
        for (did, aid, sid, channel, chat, thread, status, attempts, text, rule_id, kind, symbol, bar_time,
             values, fired_at) in rows:
            event = AlertEvent(rule_id, kind, symbol, parse_time(bar_time), json.loads(values or "{}"))
            out.append(Delivery(did, aid, sid, channel, chat, thread or "", status, attempts, text or "", event,
                                parse_time(fired_at) if fired_at else None))
        return out

    def claim_deliveries(self, delivery_ids: Sequence[int], now: datetime) -> list[int]:
        """Claim the given rows that are still waiting and unclaimed (one commit, before sending); return those claimed."""
        claimed = []
        with self.transaction():
            for delivery_id in delivery_ids:
                cursor = self.db.execute(
                    "update deliveries set claimed_at = ? where id = ? and claimed_at is null "
                    "and status in ('pending', 'retrying')", [iso(now), delivery_id])
                if cursor.rowcount:
                    claimed.append(delivery_id)
        return claimed

    def release_claims(self, delivery_ids: Iterable[int]) -> None:
        """Put claimed deliveries that were not attempted back in the outbox as they were."""
        with self.transaction():
            self.db.conn.executemany("update deliveries set claimed_at = null where id = ?",
                                     [(i,) for i in delivery_ids])

    def release_stale_claims(self) -> int:
        """Release the claims an earlier run left when it stopped mid-send; return how many."""
        with self.transaction():
            return self.db.execute(
                "update deliveries set claimed_at = null where claimed_at is not null and status in ('pending', 'retrying')"
            ).rowcount

    def waiting_channels(self, after: int = 0) -> tuple[set[str], int]:
        """Return the channels with deliveries pending or retrying among those numbered above `after`, and the
        highest number there is (pass it back next time: rows are numbered as they are added, never removed)."""
        # Both through an index (status; the rowid): a long-running bot's first drain finds the few waiting rows
        # without reading its years of sent ones.
        waiting = {row[0] for row in self.db.execute(
            "select distinct channel from deliveries where status in ('pending', 'retrying') and id > ?", [after])}
        top = self.db.execute("select max(id) from deliveries").fetchone()[0]
        return waiting, max(top or 0, after)

    def claimed_count(self) -> int:
        """Return how many deliveries are claimed (being sent, or sent with the outcome not yet recorded)."""
        return self.db.execute("select count(*) from deliveries where claimed_at is not null").fetchone()[0]

    def mark_sent(self, delivery_id: int, now: datetime) -> None:
        """Record that a delivery reached its chat."""
        with self.transaction():
            self.db.execute(
                "update deliveries set status = 'sent', attempts = attempts + 1, sent_at = ?, last_error = null, "
                "claimed_at = null where id = ?",
                [iso(now), delivery_id],
            )

    def mark_retry(self, delivery_id: int, next_attempt_at: datetime, error: str) -> None:
        """Record a failed attempt worth retrying at `next_attempt_at`."""
        with self.transaction():
            self.db.execute(
                "update deliveries set status = 'retrying', attempts = attempts + 1, next_attempt_at = ?, "
                "last_error = ?, claimed_at = null where id = ?",
                [iso(next_attempt_at), error[:500], delivery_id],
            )

    def mark_failed(self, delivery_id: int, error: str) -> None:
        """Record that a delivery can never succeed."""
        with self.transaction():
            self.db.execute(
                "update deliveries set status = 'failed', attempts = attempts + 1, last_error = ?, claimed_at = null "
                "where id = ?",
                [error[:500], delivery_id],
            )

    def outbox_counts(self) -> dict[str, int]:
        """Return how many deliveries are in each status."""
        counts = dict.fromkeys(DELIVERY_STATUSES, 0)
        counts.update(dict(self.db.execute("select status, count(*) from deliveries group by status").fetchall()))
        return counts


_ALERT_COLUMNS = "id, dedup_key, rule_id, kind, symbol, bar_time, values_json, text, fired_at"


def _recorded_alert(row: Sequence[Any]) -> RecordedAlert:
    alert_id, dedup_key, rule_id, kind, symbol, bar_time, values, text, fired_at = row
    return RecordedAlert(alert_id, dedup_key, rule_id, kind, symbol, parse_time(bar_time), json.loads(values or "{}"),
                         text or "", parse_time(fired_at) if fired_at else None)
