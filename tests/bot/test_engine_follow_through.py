"""follow_through through the real engine: leader and follower bars in different polls, and a restart between."""

from __future__ import annotations

from datetime import timedelta

from alerts.bars import Bar, utc
from alerts.evaluate import RuleBinding
from alerts.rules import RULES
from bot.engine import Engine
from storage import Store


def rules():
    ath = RULES["new_ath"]("smallcap_ath", RULES["new_ath"].Params(min_gap_days=30, min_history_days=0))
    follow = RULES["follow_through"]("crypto_follow", RULES["follow_through"].Params(
        leaders=["^RUT"], trigger_rules=["smallcap_ath"], window_days=10, min_move_pct=20.0, min_history_days=0))
    flip = RULES["resistance_flip"]("btc_flip", RULES["resistance_flip"].Params(
        levels=[100.0], break_pct=0.5, tolerance_pct=1.0, hold_bars=2, rearm_pct=1.0))
    return [RuleBinding(ath, ("^RUT",)), RuleBinding(flip, ("BTC",)), RuleBinding(follow, ("BTC",))]


DAY0 = utc(2025, 1, 1)


def bar(day: int, close: float) -> Bar:
    return Bar(DAY0 + timedelta(days=day), close, close, close, close)


# ^RUT: a high on day 0, a dip, then a fresh new high on day 40 (the trigger).
RUT = [bar(0, 2000)] + [bar(d, 1900) for d in range(1, 40)] + [bar(40, 2010)]
# BTC: far under its old high, flat at 90, then breaks 100 on day 41, retests, holds: a flip on day 43.
BTC = [bar(0, 150)] + [bar(d, 90) for d in range(1, 41)] + [Bar(DAY0 + timedelta(days=41), 90, 101, 90, 101),
                                            Bar(DAY0 + timedelta(days=42), 101, 101.5, 100.5, 101),
                                            Bar(DAY0 + timedelta(days=43), 101, 101, 100.8, 101)]


def follow_alerts(store: Store) -> list[tuple[str, str, dict]]:
    return [(a.symbol, f"{a.bar_time:%Y-%m-%d}", a.values) for a in store.recent_alerts(100, include_silent=True)
            if a.rule_id == "crypto_follow"]


def test_a_leader_polled_apart_from_the_follower_still_opens_the_window(store):
    """^RUT's breakout arrives in one poll, BTC's bars in later polls: BTC's confirmation is still found."""
    engine = Engine(store, rules(), ["^RUT", "BTC"])
    live = utc(2000, 1, 1)
    engine.ingest({"^RUT": RUT}, DAY0 + timedelta(days=41), live)
    engine.ingest({"BTC": BTC[:41]}, DAY0 + timedelta(days=41), live)
    engine.ingest({"BTC": BTC[41:]}, DAY0 + timedelta(days=44), live)
    found = follow_alerts(store)
    assert [(s, d, v["days_after"], v["confirmed_by"]) for s, d, v in found] == [
        ("BTC", "2025-02-13", 3, ["resistance_flip"])
    ]


def test_a_restart_between_the_polls_loses_nothing(store):
    """A new engine on the same database (a restart) still knows the leader's breakout of the last poll."""
    live = utc(2000, 1, 1)
    Engine(store, rules(), ["^RUT", "BTC"]).ingest({"^RUT": RUT}, DAY0 + timedelta(days=41), live)
    Engine(store, rules(), ["^RUT", "BTC"]).ingest({"BTC": BTC}, DAY0 + timedelta(days=44), live)
    assert [(s, d) for s, d, _ in follow_alerts(store)] == [("BTC", "2025-02-13")]
