"""Schema migrations, applied in order once each, each in one transaction; the applied ones are listed in `migrations`.

Append a new migration at the end with the next free number (0004 is issue 11's, 0005 the fragility tables);
never edit one that has shipped: databases in the field have already run it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Sequence

from sqlite_utils import Database

from alerts.errors import RiskonError


def _create_core(db: Database) -> None:
    """Create bars, alerts, rule state, subscriptions, deliveries, feed health and settings."""
    db.table("bars").create(
        {"symbol": str, "interval": str, "time": str, "open": float, "high": float, "low": float,
         "close": float, "volume": float},
        pk=("symbol", "interval", "time"), if_not_exists=True,
    )
    db.table("alerts").create(
        {"id": int, "dedup_key": str, "rule_id": str, "kind": str, "symbol": str, "bar_time": str,
         "values_json": str, "text": str, "fired_at": str, "silent": int},
        pk="id", if_not_exists=True,
        not_null={"dedup_key", "rule_id", "kind", "symbol", "bar_time", "fired_at"},
    )
    db.table("alerts").create_index(["dedup_key"], unique=True, if_not_exists=True)
    db.table("alerts").create_index(["fired_at"], if_not_exists=True)
    db.table("rule_state").create(
        {"rule_id": str, "symbol": str, "state_json": str, "last_bar_time": str, "updated_at": str},
        pk=("rule_id", "symbol"), if_not_exists=True,
    )
    db.table("subscriptions").create(
        {"id": int, "channel": str, "chat_id": str, "thread_id": str, "rules_json": str,
         "symbols_json": str, "active": int, "created_at": str, "deactivated_reason": str},
        pk="id", if_not_exists=True,
        not_null={"channel", "chat_id"},
    )
    db.table("subscriptions").create_index(["channel", "chat_id", "thread_id"], unique=True, if_not_exists=True)
    db.table("mutes").create(
        {"id": int, "subscription_id": int, "rule_id": str, "symbol": str, "until": str},
        pk="id", if_not_exists=True,
        foreign_keys=[("subscription_id", "subscriptions", "id")],
    )
    db.table("deliveries").create(
        {"id": int, "alert_id": int, "subscription_id": int, "channel": str, "chat_id": str,
         "thread_id": str, "status": str, "attempts": int, "next_attempt_at": str,
         "last_error": str, "created_at": str, "sent_at": str},
        pk="id", if_not_exists=True,
        foreign_keys=[("alert_id", "alerts", "id")],
        not_null={"alert_id", "channel", "chat_id", "status"},
        defaults={"attempts": 0},
    )
    db.table("deliveries").create_index(["alert_id", "channel", "chat_id", "thread_id"], unique=True, if_not_exists=True)
    db.table("deliveries").create_index(["status", "next_attempt_at"], if_not_exists=True)
    db.table("feed_health").create(
        {"feed": str, "last_ok_at": str, "last_error_at": str, "last_error": str, "failures": int},
        pk="feed", if_not_exists=True,
    )
    db.table("settings").create({"key": str, "value": str}, pk="key", if_not_exists=True)


def _create_flows(db: Database) -> None:
    """Create ETF shares counts (every reported value, so history accumulates) and daily net flows."""
    db.table("fund_shares").create(
        {"id": int, "fund": str, "day": str, "shares_outstanding": float, "nav": float, "source": str,
         "recorded_at": str},
        pk="id", if_not_exists=True, not_null={"fund", "day", "shares_outstanding"},
    )
    db.table("fund_shares").create_index(["fund", "day", "source", "shares_outstanding"], unique=True, if_not_exists=True)
    db.table("flows").create(
        {"fund": str, "time": str, "flow_usd": float, "shares_outstanding": float, "nav": float, "source": str,
         "recorded_at": str},
        pk=("fund", "time"), if_not_exists=True, not_null={"flow_usd"},
    )


def _index_deliveries_by_chat(db: Database) -> None:
    """Index the outbox by chat, so a chat's alerts can be held in order behind one that waits to retry."""
    db.table("deliveries").create_index(["channel", "chat_id", "thread_id", "status"], if_not_exists=True)


def _claim_deliveries(db: Database) -> None:
    """Add the claim time of a delivery being sent: no drain picks up a claimed row (bot.delivery)."""
    db.table("deliveries").add_column("claimed_at", str)


def _create_fragility(db: Database) -> None:
    """Create fragility snapshots, the members each one counts, and every member's last net income reading."""
    db.table("fragility_snapshots").create(
        {"id": int, "fund": str, "started_at": str, "holdings_as_of": str, "finished_at": str, "status": str,
         "members": int, "covered": int, "unprofitable": int, "unprofitable_pct_count": float,
         "unprofitable_pct_weight": float, "coverage_pct_weight": float, "note": str},
        pk="id", if_not_exists=True, not_null={"fund", "started_at", "status"},
    )
    db.table("fragility_snapshots").create_index(["fund", "status", "started_at"], if_not_exists=True)
    db.table("fragility_members").create(
        {"snapshot_id": int, "ticker": str, "yahoo": str, "name": str, "weight_pct": float, "attempts": int,
         "last_error": str},
        pk=("snapshot_id", "ticker"), if_not_exists=True,
        foreign_keys=[("snapshot_id", "fragility_snapshots", "id")], defaults={"attempts": 0},
    )
    db.table("member_net_income").create(
        {"yahoo": str, "net_income": float, "as_of": str, "source": str, "problem": str, "fetched_at": str},
        pk="yahoo", if_not_exists=True, not_null={"fetched_at"},
    )


def _index_alerts_by_rule_and_symbol(db: Database) -> None:
    """Index alerts by rule and symbol: the notify policy reads the last one before each new event."""
    db.table("alerts").create_index(["rule_id", "symbol", "bar_time"], if_not_exists=True)


def _rule_state_kind(db: Database) -> None:
    """Record each saved rule state's kind: a rule id kept while its kind changes must not read the old kind's."""
    db.execute("alter table rule_state add column kind text")  # NULL for the states saved before: taken as they are


Migration = tuple[str, Callable[[Database], None]]
MIGRATIONS: list[Migration] = [
    ("0001_core", _create_core),
    ("0002_flows", _create_flows),
    ("0003_deliveries_by_chat", _index_deliveries_by_chat),
    ("0004_delivery_claims", _claim_deliveries),
    ("0005_fragility", _create_fragility),
    ("0006_alerts_by_rule", _index_alerts_by_rule_and_symbol),
    ("0007_rule_state_kind", _rule_state_kind),
]


def migrate(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction; return their names."""
    if "migrations" not in db.table_names():
        db.table("migrations").create({"name": str, "applied_at": str}, pk="name")
    done = {row["name"] for row in db.table("migrations").rows}
    unknown = sorted(done - {name for name, _ in migrations})
    if unknown:  # a later version's tables may have changed shape: writing to them as this version would is a guess
        raise RiskonError(f"it was written by a newer riskon (migration {', '.join(unknown)} "
                          f"{'is' if len(unknown) == 1 else 'are'} unknown here): run that version, or a backup "
                          "taken before the upgrade")
    applied = []
    for name, apply in migrations:
        if name in done:
            continue
        # One real transaction: `with db.conn` opens none on an autocommit connection, so a migration that
        # failed halfway used to leave its first tables behind. SQLite's DDL is transactional; sqlite-utils
        # (4.x) nests its own writes inside ours as savepoints.
        db.execute("BEGIN IMMEDIATE")
        try:
            apply(db)
            db.table("migrations").insert({"name": name, "applied_at": _now_text()})
        except BaseException:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        applied.append(name)
    return applied


def _now_text() -> str:
    return datetime.now(timezone.utc).isoformat()
