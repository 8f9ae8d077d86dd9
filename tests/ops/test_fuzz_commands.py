"""Fuzzing chat commands: whatever a user types, every handler answers (or clearly refuses), never crashes.

The commands run through the chat-agnostic layer (bot.commands.dispatch) with the real Runtime and Store, as
Telegram and Discord call it; a handler that raised shows as "failed on riskon's side", which fails the test.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.bars import Bar
from bot.commands import SPECS, CommandContext, CommandRateLimit, Reply, dispatch
from bot.config import load_config
from bot.runtime import Runtime
from storage import Store
from tests.ops.fuzzing import FUZZ, cases

CASES_COMMANDS = cases(1000)
CASES_TYPED_TEXT = cases(500)
CASES_ADMIN_ONLY = cases(170)

NOW = datetime(2026, 9, 26, 12, 0, tzinfo=timezone.utc)
ADMIN = "900"
CRASHED = "failed on riskon's side"
MAX_REPLY = 20_000  # /status of every symbol is the longest answer; far below this

CONFIG = """
feeds: {replay: {kind: replay, path: "."}}
symbols:
  - {id: "^RUT", feed: replay, csv: RUT, asset_class: index}
  - {id: IWM, feed: replay, asset_class: etf}
  - {id: BTC, feed: replay, csv: BTC-USD, asset_class: crypto}
  - {id: ALTS, feed: replay, asset_class: composite}
rules:
  - {id: rut_ath, kind: new_ath, symbols: ["^RUT"]}
  - {id: rut_flip, kind: resistance_flip, symbols: ["^RUT"], levels: [2442.74]}
  - {id: btc_ath, kind: new_ath, symbols: [BTC]}
  - {id: btc_surge, kind: pct_move, symbols: [BTC, ALTS], bars: 7, min_pct: 20, cooldown: 14d}
admins: ["telegram:900", "901"]
"""


async def _yes() -> bool:
    return True


async def _no() -> bool:
    return False


async def _cannot_tell() -> bool:
    raise ConnectionError("chat service unreachable")


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


# Not the shared `runtime` fixture (tests/conftest.py): one per module on its own loop, with bars and no pace limit.
@pytest.fixture(scope="module")
def runtime(tmp_path_factory, loop):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "config.yaml").write_text(CONFIG)
    store = Store.memory()
    # A few weeks of bars, so /status and /chart have figures to show (and ALTS and IWM have none).
    for symbol, close in (("^RUT", 2400.0), ("BTC", 90000.0)):
        store.upsert_bars(symbol, [
            Bar(NOW.replace(hour=0) - timedelta(days=40 - day), close + day, close + day + 5, close + day - 5,
                close + day + 1, 1000.0) for day in range(40)])
    made = Runtime(load_config(folder / "config.yaml"), store, clock=lambda: NOW)
    # Fuzzing sends thousands of commands from a handful of users: the pace limit is tested on its own below.
    made.command_limit = CommandRateLimit(per_minute=1e12, burst=1e12)  # never paces
    yield made
    store.close()


# --- strategies ------------------------------------------------------------------------------------------

NAMES = st.one_of(
    st.sampled_from(sorted(SPECS)),
    st.sampled_from(sorted(SPECS)).map(lambda name: f"/{name.upper()}@riskon_bot"),
    st.sampled_from(["", "/", "@", "/@", "//status", "status@", "/help@other_bot@x", "/ status", "ѕtatus"]),
    st.text(max_size=80),
)
WORDS = st.one_of(
    st.sampled_from(["^RUT", "rut", "RUT", "btc", "BTC", "IWM", "ALTS", "^", "^^RUT", "rut_ath", "new_ath",
                     "NEW_ATH", "pct_move", "btc_surge", "all", "ALL", "everything"]),
    st.sampled_from(["6h", "30m", "2d", "1w", "0m", "-1h", "365d", "366d", "99999999999d", "1e9h", "1.5h", "h",
                     "6 h", "nan", "inf", "1_000d"]),
    st.sampled_from(["0", "1", "5", "50", "51", "-1", "99999999999999999999999", "²", "٣", "½", "1.0", "0x10",
                     "𝟓"]),
    st.sampled_from(["<b>bold</b>", "</code>", "<a href='javascript:alert(1)'>x</a>", "&amp;", "&#0;", "*_`[]()~",
                     "**bold**", "[link](http://x)", "'; DROP TABLE subscriptions; --", "\" OR 1=1 --",
                     "%s%s%n", "{0}", "${HOME}", "\x00", "\u202eRTL", "\u200b", "👍🏽", "null", "None",
                     "@everyone", "<@123>", "<#123>", "\\", "\n", "\t", " "]),
    st.text(max_size=20),
    st.text(min_size=60, max_size=70),  # around the longest argument accepted (64)
    st.text(max_size=2000),
)
ARGS = st.lists(WORDS, max_size=45)  # past the most arguments accepted (40)
CONTEXTS = st.builds(
    CommandContext,
    channel=st.sampled_from(["telegram", "discord"]),
    chat_id=st.sampled_from(["111", "-100", "-200", "900", "0", "", "-1001234567890"]),
    thread_id=st.sampled_from(["", "7", "123456789012345678"]),
    user_id=st.sampled_from(["111", "302", "900", "901", "", "0"]),
    is_private=st.booleans(),
    may_manage=st.sampled_from([_yes, _no, _cannot_tell]),
)


def answer(loop, runtime, ctx: CommandContext, name: str, args: list[str]) -> Reply:
    """Dispatch one command and check the reply is an answer, not a crash."""
    reply = loop.run_until_complete(asyncio.wait_for(dispatch(runtime, ctx, name, args), 10))
    assert isinstance(reply, Reply)
    assert isinstance(reply.text, str) and reply.text.strip(), f"/{name} {args} got an empty reply"
    assert CRASHED not in reply.text, f"/{name} {args!r} by {ctx} crashed a handler (see the log)"
    assert len(reply.text) <= MAX_REPLY
    assert reply.image_png is None or reply.image_png.startswith(b"\x89PNG")
    return reply


# --- bugs the fuzzing found (regressions) -----------------------------------------------------------------

@pytest.mark.parametrize("count", ["²", "𝟓", "٣"])
def test_alerts_with_a_unicode_digit_is_a_usage_error_not_a_crash(loop, runtime, count):
    # "²".isdigit() is True but int("²") raises: /alerts ² used to fail on riskon's side.
    reply = answer(loop, runtime, CommandContext("telegram", "111", "", "111", True), "alerts", [count])
    assert "Usage: /alerts [N]" in reply.text


# --- properties ------------------------------------------------------------------------------------------

@settings(FUZZ, max_examples=CASES_COMMANDS)
@given(CONTEXTS, NAMES, ARGS)
def test_every_command_with_any_arguments_gets_an_answer(loop, runtime, ctx, name, args):
    answer(loop, runtime, ctx, name, args)


@settings(FUZZ, max_examples=CASES_TYPED_TEXT)
@given(CONTEXTS, st.one_of(st.text(max_size=300), st.lists(WORDS, max_size=12).map(" ".join),
                           st.tuples(NAMES, ARGS).map(lambda t: " ".join(["/" + t[0].lstrip("/"), *t[1]]))))
def test_any_typed_message_split_as_the_adapters_do_gets_an_answer(loop, runtime, ctx, text):
    words = text.split()
    if not words:
        return  # the adapters never dispatch an empty message
    answer(loop, runtime, ctx, words[0][1:] if words[0].startswith("/") else words[0], words[1:])


ADMIN_ONLY = sorted(name for name, spec in SPECS.items() if spec.admin_only)


@settings(FUZZ, max_examples=CASES_ADMIN_ONLY)
@given(CONTEXTS.filter(lambda c: c.user_id not in ("900", "901")), st.sampled_from(ADMIN_ONLY), ARGS)
def test_admin_commands_refuse_everyone_else_whatever_the_arguments(loop, runtime, ctx, name, args):
    paused = runtime.store.setting("paused", "0")
    reply = answer(loop, runtime, ctx, name, args)
    too_many = len(args) > 40 or any(len(arg) > 64 for arg in args)
    assert too_many or reply.text == f"/{name} is for riskon's admins only.", reply.text
    assert runtime.store.setting("paused", "0") == paused


def test_the_pace_limit_answers_each_flooding_user_with_a_clear_refusal(loop, runtime):
    clock = [0.0]
    limit = CommandRateLimit(per_minute=30, burst=30, clock=lambda: clock[0])
    runtime.command_limit = limit
    try:
        flooder = CommandContext("telegram", "111", "", "111", True)
        other = CommandContext("telegram", "-100", "", "302", False, _no)
        replies = [answer(loop, runtime, flooder, "help", []).text for _ in range(40)]
        assert all("Slow down" not in text for text in replies[:30])
        assert replies[30:] == ["Slow down: at most 30 commands a minute each. Try again in 2 s."] * 10
        assert "Slow down" not in answer(loop, runtime, other, "help", []).text  # one user's flood is theirs
        clock[0] += 2.0  # one command every two seconds
        assert "Slow down" not in answer(loop, runtime, flooder, "help", []).text
        assert "Slow down" in answer(loop, runtime, flooder, "help", []).text
    finally:
        runtime.command_limit = CommandRateLimit(per_minute=1e12, burst=1e12)
