"""The notify policy inside the engine: a rule's cooldown and frequency hold alerts back, restart-proof."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.bars import Bar, utc
from alerts.evaluate import RuleBinding
from alerts.policy import NotifyPolicy
from alerts.rules import RULES
from bot.engine import Engine
from storage import Store

DAY0 = utc(2025, 1, 1)



def closes(values):
    return [Bar(DAY0 + timedelta(days=i), c, c, c, c) for i, c in enumerate(values)]


# Level 100 crossed up on days 1, 3 and 9 (down on 2 and 8).
SERIES = closes([95, 101, 99, 101, 101, 101, 101, 101, 99, 101])


def run(policy: NotifyPolicy, cut: int | None = None) -> tuple[list[str], int]:
    store = Store.memory()
    rule = RULES["level_cross"]("cross", RULES["level_cross"].Params(levels=[100.0], direction="up"))
    live = utc(2000, 1, 1)
    parts = [SERIES] if cut is None else [SERIES[:cut], SERIES[cut:]]
    suppressed = 0
    for part in parts:  # a new engine per part: a restart
        report = Engine(store, [RuleBinding(rule, ("X",), policy)], ["X"]).ingest({"X": part}, DAY0 + timedelta(days=30), live)
        suppressed += report.suppressed
    days = sorted(f"{a.bar_time:%Y-%m-%d}" for a in store.recent_alerts(50, include_silent=True))
    return days, suppressed


@pytest.mark.parametrize(
    "policy,expected,held",
    [
        (NotifyPolicy(), ["2025-01-02", "2025-01-04", "2025-01-10"], 0),
        (NotifyPolicy(cooldown=timedelta(days=3)), ["2025-01-02", "2025-01-10"], 1),
        (NotifyPolicy(cooldown=timedelta(days=2)), ["2025-01-02", "2025-01-04", "2025-01-10"], 0),
        (NotifyPolicy("every_time", timedelta(days=30)), ["2025-01-02", "2025-01-04", "2025-01-10"], 0),
    ],
    ids=["no policy", "3-day cooldown holds the second", "cooldown exactly over", "every_time ignores cooldown"],
)
def test_policy_in_the_engine(policy, expected, held):
    """Suppressed events are not recorded; the same with a restart in the middle."""
    assert run(policy) == (expected, held)
    for cut in range(1, len(SERIES)):
        assert run(policy, cut) == (expected, held)


@pytest.mark.parametrize(
    "mute,gets",
    [
        ({}, ["1", "2"]),
        ({"rule_id": "crypto_follow"}, ["2"]),
        ({"rule_id": "follow_through"}, ["2"]),  # a kind mutes every rule of that kind
        ({"symbol": "BTC"}, ["2"]),
        ({"symbol": "ETH"}, ["1", "2"]),
        ({"rule_id": "crypto_follow", "symbol": "ETH"}, ["1", "2"]),
        ({"rule_id": "crypto_follow", "until_hours": -1}, ["1", "2"]),  # expired
    ],
)
def test_mutes_per_chat_by_rule_and_symbol_until_they_expire(store, mute, gets):
    """Store.mute fits the policy's needs: per chat, for a rule (or kind) and/or a symbol, until a time."""
    from alerts.events import AlertEvent

    now = utc(2025, 10, 5, 12)
    one = store.subscribe("telegram", "1")
    store.subscribe("telegram", "2")
    if mute:
        hours = mute.get("until_hours", 24)
        store.mute(one.id, now + timedelta(hours=hours), rule_id=mute.get("rule_id"), symbol=mute.get("symbol"))
    event = AlertEvent("crypto_follow", "follow_through", "BTC", utc(2025, 10, 5), {"price": 123513.48})
    assert [s.chat_id for s in store.recipients(event, now)] == gets


def test_a_forming_bar_alerts_at_once_and_leaves_the_committed_state_to_the_final_bar():
    """An intraday high (by: high) alerts on the forming bar; the state moves only with the final bar, which
    does not alert again, and a later forming bar under the mark says nothing."""
    store = Store.memory()
    rule = RULES["new_ath"]("intraday", RULES["new_ath"].Params(by="high", rearm_pct=0.0, min_gap_days=0,
                                                                 min_history_days=0))
    live, now = utc(2000, 1, 1), DAY0 + timedelta(days=30)
    engine = Engine(store, [RuleBinding(rule, ("X",))], ["X"])
    engine.ingest({"X": closes([100, 101])}, now, live)
    forming = Bar(DAY0 + timedelta(days=2), 101, 105, 100, 104, final=False)
    report = engine.ingest({"X": [forming]}, now, live)
    assert [e.values["price"] for _, e in report.alerts] == [105]
    assert engine.state("intraday", "X")[0]["ath"] == 101  # the forming bar committed nothing
    final = Bar(forming.time, 101, 105, 100, 104)
    assert engine.ingest({"X": [final]}, now, live).alerts == []  # the same high, already told
    assert engine.state("intraday", "X") == (store.rule_state("intraday", "X")[0], final.time)
    assert engine.state("intraday", "X")[0]["ath"] == 105
    later = Bar(DAY0 + timedelta(days=3), 104, 104.5, 103, 104, final=False)
    assert engine.ingest({"X": [later]}, now, live).alerts == []
