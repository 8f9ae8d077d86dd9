"""Which chats receive alerts, with their filters, and the mutes they set."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from alerts.events import AlertEvent
from storage.base import StoreBase, iso, parse_time
from storage.rows import Mute


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


class Subscriptions(StoreBase):
    """Subscribe, move, stop and mute chats, and say who should receive an event."""

    def subscribe(
        self, channel: str, chat_id: str, thread_id: str = "", rules: Sequence[str] = (), symbols: Sequence[str] = (),
        now: datetime | None = None,
    ) -> Subscription:
        """Create or re-activate a chat's subscription, replacing its filters."""
        now = now or datetime.now(timezone.utc)
        with self.transaction():
            self._read_in_transaction.pop("audience", None)  # it changes
            self.db.execute(
                "insert into subscriptions (channel, chat_id, thread_id, rules_json, symbols_json, active, created_at) "
                "values (?,?,?,?,?,1,?) on conflict(channel, chat_id, thread_id) do update set "
                "rules_json = excluded.rules_json, symbols_json = excluded.symbols_json, active = 1, "
                "deactivated_reason = null",
                [channel, str(chat_id), thread_id or "", json.dumps(sorted(set(rules))),
                 json.dumps(sorted(set(symbols))), iso(now)],
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
            self._read_in_transaction.pop("audience", None)  # it changes
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
        subscriptions, mutes = self._audience()
        moment = iso(now)
        muted = {subscription_id for subscription_id, rule_id, symbol, until in mutes
                 if until is not None and until > moment and rule_id in (None, event.rule_id, event.kind)
                 and symbol in (None, event.symbol)}
        return [s for s in subscriptions if s.wants(event) and s.id not in muted]

    def _audience(self) -> tuple[list[Subscription], list[tuple[int, str | None, str | None, str | None]]]:
        """Return the active subscriptions and every mute: read once per transaction (an engine batch records
        many alerts), and on every call outside one."""
        audience = self._read_in_transaction.get("audience")
        if audience is None:
            mutes = self.db.execute("select subscription_id, rule_id, symbol, until from mutes").fetchall()
            audience = (self.active_subscriptions(), mutes)
            if self._depth:
                self._read_in_transaction["audience"] = audience
        return audience

    def mute(self, subscription_id: int, until: datetime, rule_id: str | None = None, symbol: str | None = None) -> None:
        """Mute a subscription until `until`, for everything or one rule and/or symbol."""
        with self.transaction():
            self._read_in_transaction.pop("audience", None)  # it changes
            self.db.execute(
                "insert into mutes (subscription_id, rule_id, symbol, until) values (?,?,?,?)",
                [subscription_id, rule_id, symbol, iso(until)],
            )

    def unmute(self, subscription_id: int) -> int:
        """Lift every mute of a subscription; return how many were lifted."""
        with self.transaction():
            self._read_in_transaction.pop("audience", None)  # it changes
            return self.db.execute("delete from mutes where subscription_id = ?", [subscription_id]).rowcount

    def mutes(self, subscription_id: int, now: datetime) -> list[Mute]:
        """Return a subscription's mutes still in force."""
        rows = self.db.execute(
            "select rule_id, symbol, until from mutes where subscription_id = ? and until > ? order by until",
            [subscription_id, iso(now)],
        ).fetchall()
        return [Mute(rule, symbol, parse_time(until)) for rule, symbol, until in rows]


def _subscription(row: Sequence[Any]) -> Subscription:
    sid, channel, chat_id, thread_id, rules, symbols, active = row
    return Subscription(
        sid, channel, chat_id, thread_id or "", tuple(json.loads(rules or "[]")), tuple(json.loads(symbols or "[]")),
        bool(active),
    )
