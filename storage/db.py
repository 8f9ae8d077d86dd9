"""The Store: every read and write riskon makes to its SQLite file, as named operations."""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from sqlite_utils import Database

from alerts.bars import Bar
from alerts.errors import RiskonError
from alerts.events import AlertEvent
from storage.migrations import migrate
from storage.rows import FeedPolls, Mute, RecordedAlert

DELIVERY_STATUSES = ("pending", "sent", "retrying", "failed")


class StorageError(RiskonError):
    """Signal that the database cannot be opened or used."""


@dataclass(frozen=True)
class Subscription:
    """A chat (or topic/thread) that receives alerts, optionally filtered by rule and symbol."""

    id: int
    channel: str
    chat_id: str
    thread_id: str
    rules: tuple[str, ...]
    symbols: tuple[str, ...]
    active: bool

    def wants(self, event: AlertEvent) -> bool:
        """Say whether this subscription's filters let the event through."""
        rule_ok = not self.rules or event.rule_id in self.rules or event.kind in self.rules
        symbol_ok = not self.symbols or event.symbol in self.symbols
        return rule_ok and symbol_ok


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


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Store:
    """Open riskon's database (WAL mode, migrated) and expose its named operations."""

    def __init__(self, db: Database, busy_timeout: float = 5.0) -> None:
        self.db = db
        self.path: Path | None = None  # the file, when opened from one (storage.thread opens a second connection)
        self.durable = True
        self.busy_timeout = busy_timeout
        self._depth = 0
        self.db.conn.execute("PRAGMA foreign_keys = ON")
        self.db.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        migrate(self.db)

    @classmethod
    def open(cls, path: str | os.PathLike[str], durable: bool = True, busy_timeout: float = 5.0) -> Store:
        """Open (creating if needed, readable by its owner only) the database file at `path`.

        durable=False skips the fsync at each commit: still safe against a crash of the process, but the last
        transactions may be lost on power failure — right for replays of history, not for the live bot.
        """
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # Create the file ourselves so it never exists, even briefly, with wider permissions.
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            # Autocommit mode: riskon opens its own transactions (see `transaction`), so that an alert and
            # its outbox rows, or a whole poll's writes, commit together or not at all.
            db = Database(sqlite3.connect(str(path), isolation_level=None))
            db.enable_wal()
            db.conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            store = cls(db, busy_timeout)
            store.path, store.durable = path, durable
            return store
        except (OSError, sqlite3.DatabaseError) as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from exc

    @classmethod
    def memory(cls) -> Store:
        """Open a private in-memory database (tests, dry runs)."""
        return cls(Database(sqlite3.connect(":memory:", isolation_level=None)))

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction; nested uses join the outermost one."""
        if self._depth == 0:
            self.db.conn.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self.db.conn.execute("ROLLBACK")
            raise
        self._depth -= 1
        if self._depth == 0:
            try:
                self.db.conn.execute("COMMIT")
            except sqlite3.Error:
                # A full disk can fail the commit itself: end the transaction, or every later BEGIN fails too.
                if self.db.conn.in_transaction:
                    self.db.conn.execute("ROLLBACK")
                raise

    # --- bars cache -------------------------------------------------------------------------
    def upsert_bars(self, symbol: str, bars: Iterable[Bar]) -> int:
        """Store final bars by (symbol, interval, time), replacing any earlier copy; return how many."""
        rows = [(symbol, b.interval, _iso(b.time), b.open, b.high, b.low, b.close, b.volume) for b in bars if b.final]
        if rows:
            with self.transaction():
                self.db.conn.executemany(
                    "insert into bars (symbol, interval, time, open, high, low, close, volume) "
                    "values (?, ?, ?, ?, ?, ?, ?, ?) "
                    "on conflict(symbol, interval, time) do update set open = excluded.open, high = excluded.high, "
                    "low = excluded.low, close = excluded.close, volume = excluded.volume",
                    rows,
                )
        return len(rows)

    def load_bars(self, symbol: str, interval: str = "1d", since: datetime | None = None) -> list[Bar]:
        """Return the cached final bars of a symbol, oldest first."""
        where, args = "symbol = ? and interval = ?", [symbol, interval]
        if since is not None:
            where += " and time >= ?"
            args.append(_iso(since))
        cursor = self.db.execute(
            f"select time, open, high, low, close, volume from bars where {where} order by time", args
        )
        return [Bar(_parse(t), o, h, l, c, v or 0.0, interval) for t, o, h, l, c, v in cursor.fetchall()]

    def recent_bars(self, symbol: str, count: int, interval: str = "1d") -> list[Bar]:
        """Return the newest `count` cached final bars of a symbol, oldest first."""
        cursor = self.db.execute(
            "select time, open, high, low, close, volume from bars where symbol = ? and interval = ? "
            "order by time desc limit ?",
            [symbol, interval, count],
        )
        rows = cursor.fetchall()[::-1]
        return [Bar(_parse(t), o, h, l, c, v or 0.0, interval) for t, o, h, l, c, v in rows]

    def last_bar_time(self, symbol: str, interval: str = "1d") -> datetime | None:
        """Return the open time of the newest cached bar of a symbol."""
        row = self.db.execute(
            "select max(time) from bars where symbol = ? and interval = ?", [symbol, interval]
        ).fetchone()
        return _parse(row[0]) if row and row[0] else None

    def bar_counts(self) -> dict[str, int]:
        """Return how many bars are cached per symbol."""
        return dict(self.db.execute("select symbol, count(*) from bars group by symbol").fetchall())

    # --- rule state --------------------------------------------------------------------------
    def rule_state(self, rule_id: str, symbol: str) -> tuple[Mapping[str, Any] | None, datetime | None]:
        """Return a rule's saved state for a symbol and the time of the last bar it has seen."""
        row = self.db.execute(
            "select state_json, last_bar_time from rule_state where rule_id = ? and symbol = ?", [rule_id, symbol]
        ).fetchone()
        if not row:
            return None, None
        return json.loads(row[0]) if row[0] else None, _parse(row[1]) if row[1] else None

    def save_rule_state(
        self, rule_id: str, symbol: str, state: Mapping[str, Any] | None, last_bar_time: datetime, now: datetime
    ) -> None:
        """Save a rule's state for a symbol after it has seen the bar at `last_bar_time`."""
        self.save_rule_states([(rule_id, symbol, state, last_bar_time, now)])

    def save_rule_states(
        self, states: Iterable[tuple[str, str, Mapping[str, Any] | None, datetime, datetime]]
    ) -> None:
        """Save many rules' states at once, each as (rule_id, symbol, state, last_bar_time, now)."""
        rows = [(rule_id, symbol, json.dumps(state) if state is not None else None, _iso(seen), _iso(now))
                for rule_id, symbol, state, seen, now in states]
        if not rows:
            return
        with self.transaction():
            self.db.conn.executemany(
                "insert into rule_state (rule_id, symbol, state_json, last_bar_time, updated_at) values (?,?,?,?,?) "
                "on conflict(rule_id, symbol) do update set state_json = excluded.state_json, "
                "last_bar_time = excluded.last_bar_time, updated_at = excluded.updated_at",
                rows,
            )

    # --- alerts and the outbox ---------------------------------------------------------------
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
                    [event.dedup_key, event.rule_id, event.kind, event.symbol, _iso(event.bar_time),
                     json.dumps(dict(event.values), default=str), text, _iso(now), int(silent)],
                )
                if cursor.rowcount == 0:
                    return None
                alert_id = cursor.lastrowid
                if not silent:
                    conn.executemany(
                        "insert or ignore into deliveries (alert_id, subscription_id, channel, chat_id, thread_id, "
                        "status, attempts, next_attempt_at, created_at) values (?,?,?,?,?,'pending',0,?,?)",
                        [(alert_id, s.id, s.channel, s.chat_id, s.thread_id, _iso(now), _iso(now))
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

    def due_deliveries(self, now: datetime, limit: int = 500, channels: Sequence[str] | None = None) -> list[Delivery]:
        """Return unclaimed pending or retrying deliveries whose time has come, oldest alert first.

        A chat's alert waits while an older one for the same chat waits to retry or is being sent: alerts
        arrive in order.
        """
        only_channels = f"and d.channel in ({','.join('?' * len(channels))}) " if channels is not None else ""
        rows = self.db.execute(
            "select d.id, d.alert_id, d.subscription_id, d.channel, d.chat_id, d.thread_id, d.status, d.attempts, "
            "a.text, a.rule_id, a.kind, a.symbol, a.bar_time, a.values_json, a.fired_at "
            "from deliveries d join alerts a on a.id = d.alert_id "
            "where d.status in ('pending', 'retrying') and d.next_attempt_at <= ? and d.claimed_at is null "
            f"{only_channels}and not exists (select 1 from deliveries e where e.channel = d.channel and e.chat_id = d.chat_id "
            "and e.thread_id = d.thread_id and e.status in ('pending', 'retrying') and e.alert_id < d.alert_id "
            "and (e.next_attempt_at > ? or e.claimed_at is not null)) "
            "order by d.alert_id, d.id limit ?",
            [_iso(now), *(channels or ()), _iso(now), limit],
        ).fetchall()
        out = []
        for (did, aid, sid, channel, chat, thread, status, attempts, text, rule_id, kind, symbol, bar_time,
             values, fired_at) in rows:
            event = AlertEvent(rule_id, kind, symbol, _parse(bar_time), json.loads(values or "{}"))
            out.append(Delivery(did, aid, sid, channel, chat, thread or "", status, attempts, text or "", event,
                                _parse(fired_at) if fired_at else None))
        return out

    def claim_deliveries(self, delivery_ids: Sequence[int], now: datetime) -> list[int]:
        """Claim the given rows that are still waiting and unclaimed (one commit, before sending); return those claimed."""
        claimed = []
        with self.transaction():
            for delivery_id in delivery_ids:
                cursor = self.db.execute(
                    "update deliveries set claimed_at = ? where id = ? and claimed_at is null "
                    "and status in ('pending', 'retrying')", [_iso(now), delivery_id])
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

    def waiting_channels(self) -> set[str]:
        """Return the channels that have deliveries pending or retrying."""
        return {row[0] for row in self.db.execute(
            "select distinct channel from deliveries where status in ('pending', 'retrying')").fetchall()}

    def claimed_count(self) -> int:
        """Return how many deliveries are claimed (being sent, or sent with the outcome not yet recorded)."""
        return self.db.execute("select count(*) from deliveries where claimed_at is not null").fetchone()[0]

    def mark_sent(self, delivery_id: int, now: datetime) -> None:
        """Record that a delivery reached its chat."""
        with self.transaction():
            self.db.execute(
                "update deliveries set status = 'sent', attempts = attempts + 1, sent_at = ?, last_error = null, "
                "claimed_at = null where id = ?",
                [_iso(now), delivery_id],
            )

    def mark_retry(self, delivery_id: int, next_attempt_at: datetime, error: str) -> None:
        """Record a failed attempt worth retrying at `next_attempt_at`."""
        with self.transaction():
            self.db.execute(
                "update deliveries set status = 'retrying', attempts = attempts + 1, next_attempt_at = ?, "
                "last_error = ?, claimed_at = null where id = ?",
                [_iso(next_attempt_at), error[:500], delivery_id],
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

    # --- subscriptions -----------------------------------------------------------------------
    def subscribe(
        self, channel: str, chat_id: str, thread_id: str = "", rules: Sequence[str] = (), symbols: Sequence[str] = (),
        now: datetime | None = None,
    ) -> Subscription:
        """Create or re-activate a chat's subscription, replacing its filters."""
        now = now or datetime.now(timezone.utc)
        with self.transaction():
            self.db.execute(
                "insert into subscriptions (channel, chat_id, thread_id, rules_json, symbols_json, active, created_at) "
                "values (?,?,?,?,?,1,?) on conflict(channel, chat_id, thread_id) do update set "
                "rules_json = excluded.rules_json, symbols_json = excluded.symbols_json, active = 1, "
                "deactivated_reason = null",
                [channel, str(chat_id), thread_id or "", json.dumps(sorted(set(rules))),
                 json.dumps(sorted(set(symbols))), _iso(now)],
            )
        found = self.subscription(channel, str(chat_id), thread_id or "")
        assert found is not None
        return found

    def subscription(self, channel: str, chat_id: str, thread_id: str = "") -> Subscription | None:
        """Return a chat's subscription, active or not."""
        row = self.db.execute(
            "select id, channel, chat_id, thread_id, rules_json, symbols_json, active from subscriptions "
            "where channel = ? and chat_id = ? and thread_id = ?",
            [channel, str(chat_id), thread_id or ""],
        ).fetchone()
        return _subscription(row) if row else None

    def deactivate_subscription(self, subscription_id: int, reason: str) -> None:
        """Stop sending to a subscription (unsubscribed, or the chat is gone)."""
        with self.transaction():
            self.db.execute(
                "update subscriptions set active = 0, deactivated_reason = ? where id = ?", [reason[:300], subscription_id]
            )

    def move_subscription(self, channel: str, old_chat_id: str, new_chat_id: str, thread_id: str = "",
                          now: datetime | None = None, reason: str = "") -> Subscription | None:
        """Move an active subscription to the chat it became (a group turned supergroup), in one transaction."""
        with self.transaction():
            old = self.subscription(channel, old_chat_id, thread_id)
            if old is None or not old.active:
                return None
            moved = self.subscribe(channel, new_chat_id, thread_id, old.rules, old.symbols, now=now)
            self.deactivate_subscription(old.id, reason or f"chat became {new_chat_id}")
        return moved

    def active_subscriptions(self, channel: str | None = None) -> list[Subscription]:
        """Return every active subscription, optionally of one channel."""
        sql = "select id, channel, chat_id, thread_id, rules_json, symbols_json, active from subscriptions where active = 1"
        args: list[Any] = []
        if channel:
            sql += " and channel = ?"
            args.append(channel)
        return [_subscription(row) for row in self.db.execute(sql + " order by id", args).fetchall()]

    def recipients(self, event: AlertEvent, now: datetime) -> list[Subscription]:
        """Return the active subscriptions that want the event and have not muted it."""
        muted = {
            row[0]
            for row in self.db.execute(
                "select subscription_id from mutes where until > ? and (rule_id is null or rule_id = ? or rule_id = ?) "
                "and (symbol is null or symbol = ?)",
                [_iso(now), event.rule_id, event.kind, event.symbol],
            ).fetchall()
        }
        return [s for s in self.active_subscriptions() if s.wants(event) and s.id not in muted]

    def mute(self, subscription_id: int, until: datetime, rule_id: str | None = None, symbol: str | None = None) -> None:
        """Mute a subscription until `until`, for everything or one rule and/or symbol."""
        with self.transaction():
            self.db.execute(
                "insert into mutes (subscription_id, rule_id, symbol, until) values (?,?,?,?)",
                [subscription_id, rule_id, symbol, _iso(until)],
            )

    def unmute(self, subscription_id: int) -> int:
        """Lift every mute of a subscription; return how many were lifted."""
        with self.transaction():
            return self.db.execute("delete from mutes where subscription_id = ?", [subscription_id]).rowcount

    def mutes(self, subscription_id: int, now: datetime) -> list[Mute]:
        """Return a subscription's mutes still in force."""
        rows = self.db.execute(
            "select rule_id, symbol, until from mutes where subscription_id = ? and until > ? order by until",
            [subscription_id, _iso(now)],
        ).fetchall()
        return [Mute(rule, symbol, _parse(until)) for rule, symbol, until in rows]

    # --- feed health and settings --------------------------------------------------------------
    def record_poll(self, feed: str, now: datetime, error: str | None = None) -> None:
        """Record the outcome of one poll of a feed."""
        with self.transaction():
            if error is None:
                self.db.execute(
                    "insert into feed_health (feed, last_ok_at, failures) values (?, ?, 0) on conflict(feed) do "
                    "update set last_ok_at = excluded.last_ok_at, failures = 0",
                    [feed, _iso(now)],
                )
            else:
                self.db.execute(
                    "insert into feed_health (feed, last_error_at, last_error, failures) values (?, ?, ?, 1) "
                    "on conflict(feed) do update set last_error_at = excluded.last_error_at, "
                    "last_error = excluded.last_error, failures = failures + 1",
                    [feed, _iso(now), error[:500]],
                )

    def feed_health(self) -> list[FeedPolls]:
        """Return how every feed's polls went, by feed name."""
        rows = self.db.execute(
            "select feed, last_ok_at, last_error_at, last_error, failures from feed_health order by rowid").fetchall()
        return [FeedPolls(feed, _parse(ok) if ok else None, _parse(failed) if failed else None, error or "",
                          failures or 0) for feed, ok, failed, error, failures in rows]

    def setting(self, key: str, default: str | None = None) -> str | None:
        """Read a persisted setting (e.g. paused)."""
        row = self.db.execute("select value from settings where key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        """Persist a setting."""
        with self.transaction():
            self.db.execute(
                "insert into settings (key, value) values (?, ?) on conflict(key) do update set value = excluded.value",
                [key, value],
            )


    # --- ETF flows ------------------------------------------------------------------------------
    def upsert_fund_shares(
        self, fund: str, counts: Iterable[tuple[Any, float, float | None, str]], now: datetime
    ) -> int:
        """Keep every reported (day, shares outstanding, NAV, source) of a fund; return how many rows were given."""
        rows = [
            (fund, str(day)[:10], float(shares), None if nav is None else float(nav), source or "", _iso(now))
            for day, shares, nav, source in counts
        ]
        if rows:
            with self.transaction():
                self.db.conn.executemany(
                    "insert into fund_shares (fund, day, shares_outstanding, nav, source, recorded_at) "
                    "values (?,?,?,?,?,?) on conflict(fund, day, source, shares_outstanding) do update set "
                    "nav = coalesce(excluded.nav, fund_shares.nav)",
                    rows,
                )
        return len(rows)

    def fund_shares(self, fund: str) -> list[tuple[Any, float, float | None, str]]:
        """Return every stored shares count of a fund as (date, shares, nav, source), oldest first."""
        from datetime import date

        rows = self.db.execute(
            "select day, shares_outstanding, nav, source from fund_shares where fund = ? order by day, id", [fund]
        ).fetchall()
        return [(date.fromisoformat(d), s, n, src) for d, s, n, src in rows]

    def upsert_flows(
        self, fund: str, flows: Iterable[tuple[datetime, float, float | None, float | None, str]], now: datetime
    ) -> int:
        """Store daily net flows of a fund as (day, flow_usd, shares, nav, source), replacing that day's flow."""
        rows = [
            (fund, _iso(moment), float(flow), shares, nav, source, _iso(now))
            for moment, flow, shares, nav, source in flows
        ]
        if rows:
            with self.transaction():
                self.db.conn.executemany(
                    "insert into flows (fund, time, flow_usd, shares_outstanding, nav, source, recorded_at) "
                    "values (?,?,?,?,?,?,?) on conflict(fund, time) do update set flow_usd = excluded.flow_usd, "
                    "shares_outstanding = excluded.shares_outstanding, nav = excluded.nav, source = excluded.source, "
                    "recorded_at = excluded.recorded_at",
                    rows,
                )
        return len(rows)

    def delete_flows(self, fund: str, times: Iterable[datetime], source: str | None = None) -> int:
        """Forget a fund's flows on the given days (only those from `source`, when given)."""
        keys = [_iso(t) for t in times]
        if not keys:
            return 0
        extra, args = ("and source = ?", [source]) if source else ("", [])
        with self.transaction():
            return sum(
                self.db.execute(f"delete from flows where fund = ? and time = ? {extra}", [fund, key, *args]).rowcount
                for key in keys
            )

    def load_flows(self, fund: str, since: datetime | None = None) -> list[tuple[datetime, float]]:
        """Return a fund's daily net flows in USD as (day, flow_usd), oldest first."""
        where, args = "fund = ?", [fund]
        if since is not None:
            where += " and time >= ?"
            args.append(_iso(since))
        rows = self.db.execute(f"select time, flow_usd from flows where {where} order by time", args).fetchall()
        return [(_parse(t), v) for t, v in rows]


def _subscription(row: Sequence[Any]) -> Subscription:
    sid, channel, chat_id, thread_id, rules, symbols, active = row
    return Subscription(
        sid, channel, chat_id, thread_id or "", tuple(json.loads(rules or "[]")), tuple(json.loads(symbols or "[]")),
        bool(active),
    )


_ALERT_COLUMNS = "id, dedup_key, rule_id, kind, symbol, bar_time, values_json, text, fired_at"


def _recorded_alert(row: Sequence[Any]) -> RecordedAlert:
    alert_id, dedup_key, rule_id, kind, symbol, bar_time, values, text, fired_at = row
    return RecordedAlert(alert_id, dedup_key, rule_id, kind, symbol, _parse(bar_time), json.loads(values or "{}"),
                         text or "", _parse(fired_at) if fired_at else None)
