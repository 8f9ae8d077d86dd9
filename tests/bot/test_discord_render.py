"""Alerts as Discord embeds and replies as messages: pure rendering, checked against Discord's limits."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from alerts.events import AlertEvent
from alerts.messages import format_alert
from bot.notifiers.base import ChatTarget, OutgoingAlert
from bot.notifiers.discord.render import (
    CONTENT_LIMIT,
    DEFAULT_COLOUR,
    KIND_COLOURS,
    alert_message,
    figure,
    reply_chunks,
    send_nonce,
)
from tests.fakes.discord_limits import validate_message

BAR = datetime(2026, 3, 2, tzinfo=timezone.utc)


def payload(alert: OutgoingAlert) -> dict:
    return {"embeds": [e.to_dict() for e in alert_message(alert).embeds]}


def test_an_ath_alert_is_one_embed_with_its_figures():
    event = AlertEvent("rut_ath", "new_ath", "^RUT", BAR, {
        "price": 2450.5, "by": "close", "previous_ath": 2440.0, "previous_ath_time": "2025-11-10",
        "days_since_previous_ath": 112, "pct_above_previous": 0.43, "fresh_episode": True, "since": None})
    [embed] = payload(OutgoingAlert((event,), format_alert(event)))["embeds"]
    assert embed["title"] == "📈 ^RUT new all-time high: close 2,450.50"
    assert embed["description"].startswith("+0.4% above the previous high 2,440.00 of 2025-11-10")
    assert embed["color"] == KIND_COLOURS["new_ath"]
    assert embed["timestamp"].startswith("2026-03-02T00:00:00")
    assert embed["footer"]["text"] == "riskon · rule rut_ath · ^RUT"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields == {"Price": "2,450.50", "By": "close", "Previous ATH": "2,440.00",
                      "Previous ATH time": "2025-11-10", "Days since previous ATH": "112",
                      "% above previous": "+0.4%", "Fresh episode": "yes"}
    assert "image" not in embed


@pytest.mark.parametrize("key, value, shown", [
    ("net_flow_usd", -350e6, "-$350.0M"), ("change_pct", -2.5, "-2.5%"), ("level", 0.000123, "0.000123"),
    ("count", 3, "3"), ("held", False, "no"), ("levels", [1, 2], None), ("since", None, None),
])
def test_figures_read_like_a_trader_writes_them(key, value, shown):
    assert figure(key, value) == shown


def test_an_unknown_kind_gets_the_default_colour():
    event = AlertEvent("x", "something_new", "BTC", BAR, {"a": 1.5})
    [embed] = payload(OutgoingAlert((event,), format_alert(event)))["embeds"]
    assert embed["color"] == DEFAULT_COLOUR


@pytest.mark.parametrize("events, text, values", [
    (1, "t" * 10_000, 5),  # a huge description
    (1, "headline " * 100, 60),  # a huge title and more figures than an embed holds
    (3, "x", 30),
    (12, "x", 25),  # more events than embeds in a message
])
def test_every_message_fits_discords_limits(events, text, values):
    figures = {f"figure_{i}_" + "k" * 300: "v" * 2000 for i in range(values)}
    batch = tuple(AlertEvent(f"r{i}", "pct_move", "BTC", BAR, figures) for i in range(events))  # no "direction"
    message = payload(OutgoingAlert(batch, text))
    assert validate_message(message) is None
    assert len(message["embeds"]) == min(events, 10)
    if events > 10:
        assert message["embeds"][-1]["footer"]["text"].endswith("and 2 more alerts")


def test_a_chart_becomes_the_embed_image():
    event = AlertEvent("rut_ath", "new_ath", "^RUT", BAR, {"price": 1.0})
    message = alert_message(OutgoingAlert((event,), "headline", b"png"))
    assert message.embeds[0].image.url == "attachment://chart.png"
    assert message.file().filename == "chart.png" and message.file().fp.read() == b"png"


def test_the_nonce_is_the_same_for_the_same_alert_and_chat_only():
    event = AlertEvent("rut_ath", "new_ath", "^RUT", BAR, {"price": 1.0})
    alert = OutgoingAlert((event,), "headline")
    first = send_nonce(alert, ChatTarget("1"))
    assert first == send_nonce(alert, ChatTarget("1")) and len(first) <= 25
    assert first != send_nonce(alert, ChatTarget("2")) != send_nonce(alert, ChatTarget("1", "9"))


def test_replies_are_split_at_lines_escaped_and_cut_after_five_messages():
    assert reply_chunks("rule smallcap_ath: *up* 2%") == ["rule smallcap\\_ath: \\*up\\* 2%"]
    lines = "\n".join(f"line {i:04d} " + "x" * 90 for i in range(60))
    chunks = reply_chunks(lines)
    assert len(chunks) == 4 and all(len(c) <= CONTENT_LIMIT for c in chunks)
    assert "\n".join(chunks) == lines  # nothing lost, split only at line breaks
    assert all(c.startswith("line ") for c in chunks)
    one_long_line = "y" * 5000
    assert [len(c) for c in reply_chunks(one_long_line)] == [2000, 2000, 1000]
    cut = reply_chunks("\n".join(["z" * 1999] * 8))
    assert len(cut) == 5 and cut[-1].endswith("… (3 more messages cut)") and len(cut[-1]) <= CONTENT_LIMIT
    assert reply_chunks("   ") == ["(nothing to show)"]
