"""The chat-agnostic commands, run through the real Runtime and Store, for every kind of user."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from alerts.bars import Bar
from alerts.events import AlertEvent
from bot.commands import COMMANDS, SPECS, CommandContext, dispatch
from bot.config import load_config
from bot.degraded import degraded_reasons
from bot.feeds.quality import StaleMark
from bot.feeds.replay import read_daily_csv
from bot.runtime import Runtime

NOW = datetime(2026, 9, 26, 12, 0, tzinfo=timezone.utc)
ADMIN = "900"

CONFIG = """
feeds: {replay: {kind: replay, path: "."}}
symbols:
  - {id: "^RUT", feed: replay, csv: RUT, asset_class: index}
  - {id: IWM, feed: replay, asset_class: etf}
  - {id: BTC, feed: replay, csv: BTC-USD, asset_class: crypto}
rules:
  - {id: rut_ath, kind: new_ath, symbols: ["^RUT"]}
  - {id: rut_flip, kind: resistance_flip, symbols: ["^RUT"], levels: [2442.74]}
  - {id: btc_ath, kind: new_ath, symbols: [BTC]}
admins: ["telegram:900"]
"""


async def _yes() -> bool:
    return True


async def _no() -> bool:
    return False


async def _cannot_tell() -> bool:
    raise ConnectionError("chat service unreachable")


PRIVATE = CommandContext("telegram", "111", "", "111", True)
GROUP_MEMBER = CommandContext("telegram", "-100", "", "302", False, _no)
GROUP_ADMIN = CommandContext("telegram", "-100", "", "301", False, _yes)
TOPIC_ADMIN = CommandContext("telegram", "-200", "7", "301", False, _yes)
RISKON_ADMIN = CommandContext("telegram", "900", "", ADMIN, True)


@pytest.fixture
def runtime_config():
    return CONFIG


@pytest.fixture
def runtime_clock():
    return lambda: NOW


async def run(runtime, ctx, line: str) -> str:
    name, *args = line.split()
    return (await dispatch(runtime, ctx, name, args)).text


REFUSED_SUBSCRIPTION = "Only this group's admins"
REFUSED_ADMIN = "for riskon's admins only"
EXAMPLES = {"start": "/start", "help": "/help", "status": "/status", "subscribe": "/subscribe BTC",
            "unsubscribe": "/unsubscribe", "list": "/list", "alerts": "/alerts 3", "rules": "/rules",
            "mute": "/mute 6h", "unmute": "/unmute", "chart": "/chart BTC", "pause": "/pause", "resume": "/resume",
            "reload": "/reload", "health": "/health", "fragility": "/fragility"}


def test_every_command_has_an_example():
    assert set(EXAMPLES) == set(SPECS)


@pytest.mark.parametrize("spec", COMMANDS, ids=[c.name for c in COMMANDS])
@pytest.mark.parametrize("who", ["private", "group member", "group admin", "topic admin", "riskon admin"])
async def test_each_command_answers_those_allowed_and_refuses_the_others(runtime, spec, who):
    ctx = {"private": PRIVATE, "group member": GROUP_MEMBER, "group admin": GROUP_ADMIN,
           "topic admin": TOPIC_ADMIN, "riskon admin": RISKON_ADMIN}[who]
    runtime.store.subscribe("telegram", ctx.chat_id, ctx.thread_id)  # so unsubscribe/mute have something
    answer = await run(runtime, ctx, EXAMPLES[spec.name])
    refused_admin = spec.admin_only and who != "riskon admin"
    refused_group = spec.changes_subscriptions and who == "group member"
    assert (REFUSED_ADMIN in answer) == refused_admin, answer
    assert (REFUSED_SUBSCRIPTION in answer) == refused_group, answer
    assert "failed on riskon's side" not in answer and "Usage:" not in answer, answer


async def test_refuses_when_the_chat_service_cannot_say_who_is_admin(runtime):
    ctx = CommandContext("telegram", "-100", "", "302", False, _cannot_tell)
    assert "Could not check your rights" in await run(runtime, ctx, "/subscribe")
    assert runtime.store.subscription("telegram", "-100") is None


async def test_subscribe_filters_add_up_and_unsubscribe_removes_them(runtime):
    store = runtime.store
    assert "symbols BTC" in await run(runtime, PRIVATE, "/subscribe btc")
    assert "symbols BTC, IWM" in await run(runtime, PRIVATE, "/subscribe IWM")
    assert store.subscription("telegram", "111").symbols == ("BTC", "IWM")
    assert "symbols IWM" in await run(runtime, PRIVATE, "/unsubscribe BTC")
    assert "Nothing left to receive" in await run(runtime, PRIVATE, "/unsubscribe IWM")
    assert not store.subscription("telegram", "111").active
    assert "every alert" in await run(runtime, PRIVATE, "/subscribe")
    # From "everything", dropping a symbol spells out the others.
    assert "symbols IWM, ^RUT" in await run(runtime, PRIVATE, "/unsubscribe BTC")
    assert "Unsubscribed this chat" in await run(runtime, PRIVATE, "/unsubscribe all")
    await run(runtime, PRIVATE, "/subscribe")
    assert "rules rut_flip" in await run(runtime, PRIVATE, "/unsubscribe new_ath")  # a kind: all its rules
    assert "Unsubscribed this chat" in await run(runtime, PRIVATE, "/unsubscribe all")
    assert "not subscribed" in await run(runtime, PRIVATE, "/unsubscribe")


async def test_topics_and_groups_keep_separate_subscriptions(runtime):
    await run(runtime, TOPIC_ADMIN, "/subscribe rut_ath")
    assert runtime.store.subscription("telegram", "-200", "7").rules == ("rut_ath",)
    assert runtime.store.subscription("telegram", "-200") is None
    assert "this topic" in await run(runtime, TOPIC_ADMIN, "/list")


@pytest.mark.parametrize(
    "line, problem",
    [
        ("/subscribe DOGE", "'DOGE' is neither a rule nor a symbol"),
        ("/mute", "Give a duration"),
        ("/mute soon", "'soon' is not a duration"),
        ("/mute 400d", "at most 365d"),
        ("/mute 6h NOPE", "'NOPE' is neither"),
        ("/alerts many", "N must be a whole number"),
        ("/alerts 0", "between 1 and 50"),
        ("/status BTC ETH", "at most one symbol"),
        ("/status ETH", "Unknown symbol 'ETH'"),
        ("/chart", "Give one symbol"),
        ("/unmute now", "takes no arguments"),
    ],
)
async def test_bad_arguments_get_the_usage_line(runtime, line, problem):
    answer = await run(runtime, PRIVATE, line)
    assert problem in answer
    assert f"Usage: {SPECS[line.split()[0][1:]].usage}" in answer


async def test_unknown_command_points_to_help(runtime):
    assert "/help" in await run(runtime, PRIVATE, "/frobnicate")


async def test_a_flood_of_arguments_is_refused_without_echoing_it(runtime):
    answer = await run(runtime, PRIVATE, "/subscribe " + "x" * 5000)
    assert "Usage: /subscribe" in answer and len(answer) < 200
    assert "Usage:" in await run(runtime, PRIVATE, "/subscribe " + " BTC" * 100)


async def test_mute_keeps_alerts_from_this_chat_until_unmuted(runtime):
    store = runtime.store
    await run(runtime, PRIVATE, "/subscribe")
    event = AlertEvent("btc_ath", "new_ath", "BTC", NOW, {})
    assert "Muted BTC" in await run(runtime, PRIVATE, "/mute 2h BTC")

    def telegram_recipients(now):
        return [s.chat_id for s in store.recipients(event, now) if s.channel == "telegram"]

    assert telegram_recipients(NOW) == []
    assert telegram_recipients(NOW + timedelta(hours=3)) == ["111"]
    assert "Muted: BTC until" in await run(runtime, PRIVATE, "/list")
    assert "Lifted 1 mute" in await run(runtime, PRIVATE, "/unmute")
    assert telegram_recipients(NOW) == ["111"]


async def test_pause_and_resume_reach_the_runtime(runtime):
    await run(runtime, RISKON_ADMIN, "/pause")
    assert runtime.paused and "PAUSED" in await run(runtime, PRIVATE, "/status")
    await run(runtime, RISKON_ADMIN, "/resume")
    assert not runtime.paused


async def test_reload_keeps_the_running_config_when_the_file_is_broken(runtime, tmp_path):
    (tmp_path / "config.yaml").write_text(CONFIG.replace("new_ath", "new_athh", 1))
    answer = await run(runtime, RISKON_ADMIN, "/reload")
    assert "Config not reloaded" in answer and "new_athh" in answer
    (tmp_path / "config.yaml").write_text(CONFIG.replace("  - {id: btc_ath, kind: new_ath, symbols: [BTC]}\n", ""))
    answer = await run(runtime, RISKON_ADMIN, "/reload")
    assert "Reloaded: 3 symbols, 2 rules" in answer and "rules removed: btc_ath" in answer


async def test_alerts_and_rules_read_in_words(runtime):
    assert "No alerts yet" in await run(runtime, PRIVATE, "/alerts")
    event = AlertEvent("btc_ath", "new_ath", "BTC", NOW, {})
    runtime.store.record_alert(event, "📈 BTC new all-time high", NOW)
    assert "📈 BTC new all-time high" in await run(runtime, PRIVATE, "/alerts 1")
    rules = await run(runtime, PRIVATE, "/rules")
    assert "rut_ath: New all-time high: ^RUT closes above every earlier bar" in rules
    assert "rut_flip" in rules


# --- /status on real history ---------------------------------------------------------------------

def history(folder: Path, stem: str, since: str = "2017-01-01") -> list:
    bars, _ = read_daily_csv(folder / f"{stem}.csv")
    start = datetime.fromisoformat(since).replace(tzinfo=timezone.utc)
    return [b for b in bars if b.time >= start]


async def test_status_on_real_history(runtime, market_data):
    rut, btc = history(market_data, "RUT"), history(market_data, "BTC-USD")
    runtime.engine.ingest({"^RUT": rut, "BTC": btc}, NOW, live_since=NOW)  # history: silent
    detail = await run(runtime, PRIVATE, "/status rut")
    last, before = rut[-1], rut[-2]
    best = max(rut, key=lambda b: b.close)
    assert f"{last.close:,.2f} ({(last.close / before.close - 1) * 100:+.1f}% on the day)" in detail
    assert f"ATH {best.close:,.2f} on {best.time:%Y-%m-%d}" in detail
    assert f"{(last.close / best.close - 1) * 100:+.1f}% from it" in detail
    assert f"Data: last daily bar {last.time:%Y-%m-%d}" in detail and "STALE" not in detail
    assert "Level (rut_flip) 2,442.74" in detail
    crypto = await run(runtime, PRIVATE, "/status BTC")
    for days in (30, 90):
        line = next(x for x in crypto.splitlines() if x.startswith(f"Correlation with ^RUT, {days} days"))
        value = float(line.rsplit(" ", 1)[1])
        assert -1 <= value <= 1
    overview = await run(runtime, PRIVATE, "/status")
    assert "IWM: no data yet" in overview and "Deliveries pending: 0" in overview


async def test_status_flags_a_symbol_whose_data_stopped(runtime, market_data):
    btc = [b for b in history(market_data, "BTC-USD") if b.time < datetime(2026, 9, 1, tzinfo=timezone.utc)]
    runtime.store.upsert_bars("BTC", btc)
    assert "⚠️ STALE BTC" in await run(runtime, PRIVATE, "/status")
    assert "STALE" in await run(runtime, PRIVATE, "/status BTC")


async def test_status_and_the_health_endpoint_give_one_reason_for_a_stale_symbol(runtime, market_data):
    btc = [b for b in history(market_data, "BTC-USD") if b.time < datetime(2026, 9, 1, tzinfo=timezone.utc)]
    runtime.store.upsert_bars("BTC", btc)
    reasons = [r for r in degraded_reasons(runtime, NOW) if r.startswith("symbol BTC is stale: ")]
    assert reasons == [f"symbol BTC is stale: last bar {btc[-1].time:%Y-%m-%d %H:%M} UTC"]
    why = reasons[0].removeprefix("symbol BTC is stale: ")
    assert f"⚠️ STALE, {why}" in await run(runtime, PRIVATE, "/status BTC")
    assert f"• {reasons[0]}" in await run(runtime, RISKON_ADMIN, "/health")


async def test_chart_is_a_png_of_stored_history(runtime, market_data):
    runtime.store.upsert_bars("BTC", history(market_data, "BTC-USD", "2025-06-01"))
    reply = await dispatch(runtime, PRIVATE, "chart", ["BTC"])
    assert reply.image_png is not None and reply.image_png.startswith(b"\x89PNG")
    assert "BTC: last close" in reply.text


async def test_status_shows_a_funds_recent_net_flows(runtime):
    days = [NOW - timedelta(days=d) for d in range(1, 31)]
    runtime.store.upsert_flows("IWM", [(day, -250e6, None, None, "test") for day in days], NOW)
    detail = await run(runtime, PRIVATE, "/status IWM")
    assert "Net flow, last 5 days: -$1.2B" in detail  # five days of -$250M (day 1..5 inside the window)
    assert "Net flow, last 20 days: -$5.0B" in detail


class SilentFeed:
    """A feed whose source stopped answering: it says so through `stale`, as riskon's live feeds do."""

    name = "replay"

    async def fetch(self, symbols, since, now):
        raise ConnectionError("unreachable")

    def stale(self, now):
        return {"BTC": StaleMark(NOW - timedelta(hours=3), "HTTP 503 from the exchange")}

    async def close(self):
        pass


async def test_status_shows_why_a_feed_marked_a_symbol_stale(tmp_path, store):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    # Its own Runtime, not the shared fixture: it needs the feed that reports the stale mark.
    runtime = Runtime(load_config(path), store, clock=lambda: NOW, feeds={"replay": SilentFeed()})
    runtime.store.upsert_bars("BTC", [Bar(NOW - timedelta(days=1), 1.0, 1.0, 1.0, 1.0)])
    assert "⚠️ STALE BTC" in await run(runtime, PRIVATE, "/status")
    assert "⚠️ STALE, no good update since 2026-09-26 09:00 UTC: HTTP 503 from the exchange" in await run(
        runtime, PRIVATE, "/status BTC")
    assert "STALE" not in await run(runtime, PRIVATE, "/status IWM")
