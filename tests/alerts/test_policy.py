"""The notify policy as a table: each case an event, the last alert let through, and the expected reason."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.bars import utc
from alerts.events import AlertEvent
from alerts.policy import (
    COOLDOWN_ELAPSED,
    EVERY_TIME,
    FIRST,
    NEW_EVENT,
    SUPPRESSED,
    LastAlert,
    NotifyPolicy,
    decide,
    group_alerts,
    holds_back,
    merged_text,
    policy_from,
)

DAY1, DAY2, DAY3 = utc(2024, 11, 25), utc(2024, 11, 26), utc(2024, 11, 27)


def event(when=DAY2, price=100.0, direction="up", discriminator="", kind="new_ath"):
    values = {"price": price, "direction": direction} if price is not None else {}
    return AlertEvent("rut_ath", kind, "^RUT", when, values, discriminator)


def last(when=DAY1, price=100.0, discriminator=""):
    return LastAlert.of(event(when, price, discriminator=discriminator))


H = timedelta(hours=1)
D = timedelta(days=1)

CASES = [
    # (case, policy, event, last, notify, reason, detail contains)
    ("nothing before", NotifyPolicy(), event(), None, True, FIRST, ""),
    ("nothing before, cooldown set", NotifyPolicy(cooldown=D), event(), None, True, FIRST, ""),
    ("same event again (replay, restart)", NotifyPolicy(), event(DAY1), last(DAY1), False, SUPPRESSED, "already"),
    ("same event again, every_time", NotifyPolicy("every_time"), event(DAY1), last(DAY1), False, SUPPRESSED,
     "already"),
    ("new event, nothing throttles", NotifyPolicy(), event(DAY2), last(DAY1), True, NEW_EVENT, ""),
    ("inside the cooldown", NotifyPolicy(cooldown=2 * D), event(DAY2), last(DAY1), False, SUPPRESSED,
     "cooldown: 1d left"),
    ("cooldown exactly over (a tie ends it)", NotifyPolicy(cooldown=D), event(DAY2), last(DAY1), True,
     COOLDOWN_ELAPSED, "1d since"),
    ("cooldown long over", NotifyPolicy(cooldown=6 * H), event(DAY3), last(DAY1), True, COOLDOWN_ELAPSED, ""),
    ("once_per_bar: a second event on the same bar", NotifyPolicy("once_per_bar"),
     event(DAY1, discriminator="2442.74"), last(DAY1, discriminator="2500"), False, SUPPRESSED, "already alerted on the bar"),
    ("once_per_bar: the next bar", NotifyPolicy("once_per_bar"), event(DAY2), last(DAY1), True, NEW_EVENT, ""),
    ("once: a second level on the same bar goes out", NotifyPolicy("once"),
     event(DAY1, discriminator="2442.74"), last(DAY1, discriminator="2500"), True, NEW_EVENT, ""),
    ("every_time ignores the cooldown", NotifyPolicy("every_time", cooldown=7 * D), event(DAY2), last(DAY1), True,
     EVERY_TIME, ""),
]


@pytest.mark.parametrize("case,policy,new,before,notify,reason,detail", CASES, ids=[c[0] for c in CASES])
def test_decide(case, policy, new, before, notify, reason, detail):
    """Each case gives the decision and its reason."""
    decision = decide(policy, new, before)
    assert (decision.notify, decision.reason) == (notify, reason)
    assert detail in decision.detail


def test_policy_from_config_values():
    """The config's frequency and cooldown become a policy; unknown frequencies fall back to once."""
    assert policy_from("once_per_bar", H) == NotifyPolicy("once_per_bar", H)
    assert policy_from("sometimes") == NotifyPolicy()
    assert policy_from() == NotifyPolicy()


CHAT_A, CHAT_B = ("telegram", "1", ""), ("telegram", "2", "")


@pytest.mark.parametrize(
    "items,expected",
    [
        ([], []),
        ([(CHAT_A, 1, "a")], [["a"]]),
        ([(CHAT_A, 1, "a"), (CHAT_A, 1, "b")], [["a", "b"]]),
        ([(CHAT_A, 1, "a"), (CHAT_B, 1, "b"), (CHAT_A, 1, "c")], [["a", "c"], ["b"]]),
        ([(CHAT_A, 1, "a"), (CHAT_A, 2, "b")], [["a"], ["b"]]),
        ([(CHAT_A, 1, "x" * 3000), (CHAT_A, 1, "y" * 1000)], [["x" * 3000], ["y" * 1000]]),
        ([(CHAT_A, 1, str(i)) for i in range(12)], [[str(i) for i in range(10)], ["10", "11"]]),
    ],
    ids=["none", "one", "same chat same cycle", "two chats", "two cycles", "too long for one message", "too many"],
)
def test_group_alerts(items, expected):
    """Alerts of one cycle for one chat share a message; order is kept; no message outgrows Telegram's limit."""
    groups = group_alerts(items, chat_of=lambda i: i[0], cycle_of=lambda i: i[1], text_of=lambda i: i[2])
    assert [[i[2] for i in g] for g in groups] == expected


def test_merged_text():
    """One alert stays as it is; several get a count and blank lines between them."""
    assert merged_text(["a"]) == "a"
    assert merged_text(["a", "b"]) == "2 alerts\n\na\n\nb"


POLICIES = [NotifyPolicy(), NotifyPolicy("once", timedelta(days=14)), NotifyPolicy("once_per_bar"),
            NotifyPolicy("every_time"), NotifyPolicy("every_time", timedelta(days=14))]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: f"{p.frequency}, cooldown {p.cooldown}")
def test_a_policy_that_does_not_hold_back_sends_every_new_event_whatever_came_before(policy):
    """The engine reads the last alert only for a policy that holds back: for the others, decide always sends."""
    new = event(DAY2)
    lasts = [None] + [LastAlert(f"other|{when:%Y%m%d}", when, 100.0) for when in (DAY1, DAY2, DAY3)]
    sent = [decide(policy, new, last).notify for last in lasts]
    assert all(sent) != holds_back(policy)
