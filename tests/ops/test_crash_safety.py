"""Crash safety: `riskon run` as a real process, SIGKILLed at random moments mid-fan-out, loses and repeats nothing.

One alert (BTC's forming daily bar trades above its all-time high) fans out to 1,000 Telegram subscribers, ten
of whom blocked the bot; 55 sends fail on their first try (429, 500, an HTML 502, a 504 after 3 s), so retries
cross the kills as well. The process is killed with SIGKILL 12 times and restarted each time, against fake Yahoo
and fake Telegram servers running in this test's event loop on 127.0.0.1. Each kill is one more random moment,
not a bigger one, and each restart costs a start-up: RISKON_CRASH_KILLS=20 (and RISKON_CRASH_SEED) search longer.

What may be repeated, and the bound asserted: a send becomes a duplicate only when Telegram accepted it and the
process died before the outbox row was marked sent (one SQLite commit right after the answer). Those are exactly
the sends in flight at the kill. The Dispatcher runs at most `concurrency` (32) sends per channel at once, so a
kill can leave at most 32 such messages. The test does not only check the bound: after each kill it reads the
database and counts, per chat, the messages the fake delivered in that run whose delivery is not marked sent,
then asserts that every chat holds exactly 1 + (times it was counted so) copies.

The fake Telegram here allows 200 messages/s (Telegram allows about 30) and riskon is configured to pace itself
at 150/s, so 1,000 sends take seconds, not half a minute; the pacing code is the same either way.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import signal
import statistics
import time
from collections import Counter

import pytest

from bot.delivery import Dispatcher
from storage import Store
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.yahoo import FakeYahoo
from tests.ops.fanout import away_from_midnight, btc_history, delivery_status, spawn, wait_for, write_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SUBSCRIBERS = range(500_000, 501_000)
BLOCKED = set(SUBSCRIBERS[::100])  # ten users who blocked the bot: never reachable
FAULTS = {"429": SUBSCRIBERS[1::50], "500": SUBSCRIBERS[2::50], "502": SUBSCRIBERS[3::100],
          "timeout": SUBSCRIBERS[4::200]}  # the fake answers 504 after 3 s
KILLS = int(os.environ.get("RISKON_CRASH_KILLS", "12"))  # 12 kills, 10 of them mid-fan-out with this seed
SEED = int(os.environ.get("RISKON_CRASH_SEED", "20261124"))
IN_FLIGHT_BOUND = inspect.signature(Dispatcher).parameters["concurrency"].default  # sends a channel runs at once


@pytest.mark.slow
async def test_sigkill_at_random_moments_loses_nothing_and_repeats_only_in_flight_sends(tmp_path, market_data):
    rng = random.Random(SEED)
    await away_from_midnight()
    yahoo, telegram = FakeYahoo(), FakeTelegram(overall_per_second=200, max_poll_seconds=1)
    yahoo.add(btc_history(market_data))
    for chat_id in SUBSCRIBERS:
        telegram.add_private_chat(chat_id).blocked = chat_id in BLOCKED
    # Some sends fail on their first try, so retries cross the kills too (none of these delivers anything).
    for fault, chats in FAULTS.items():
        for chat_id in chats:
            telegram.inject(fault, chat_id)
    await yahoo.start()
    await telegram.start()
    db, config, log = tmp_path / "riskon.db", tmp_path / "config.yaml", tmp_path / "riskon.log"
    write_config(config, db=db, yahoo=yahoo, telegram=telegram, cache=tmp_path / "yf")
    store = Store.open(db)
    for chat_id in SUBSCRIBERS:
        store.subscribe("telegram", str(chat_id))
    store.close()

    in_flight_at_kill: list[int] = []  # per kill: messages delivered whose delivery was not yet recorded
    counted: Counter = Counter()  # chat -> times a copy of its alert was in flight at a kill
    kills_mid_fan_out = 0
    to_first_send: list[float] = []  # seconds from spawn to the first message of a run: start-up cost
    process = None
    started = time.monotonic()
    try:
        for _ in range(KILLS):
            first = len(telegram.sent)
            spawned = time.monotonic()
            process = await spawn(config, log)
            if rng.random() < 0.2:
                # Anywhere in start-up: imports, opening the database, the first poll, recording the alert.
                await wait_for(lambda: False, rng.uniform(0.0, 3.0), process, log)
            else:
                # Mid-fan-out, after a random number of messages of this run reached Telegram.
                target = first + rng.randint(1, 45)
                await wait_for(lambda first=first: len(telegram.sent) > first, 40.0, process, log)
                to_first_send.append(time.monotonic() - spawned)
                await wait_for(lambda target=target: len(telegram.sent) >= target, 40.0, process, log)
                await asyncio.sleep(rng.uniform(0.0, 0.02))
            process.send_signal(signal.SIGKILL)
            assert await process.wait() == -signal.SIGKILL
            await asyncio.sleep(0.1)  # let the fake finish requests that were already on the wire
            status = delivery_status(db) if db.exists() else {}
            this_run = telegram.sent[first:]
            kills_mid_fan_out += bool(this_run)
            unrecorded = [m.chat_id for m in this_run if status.get(m.chat_id) != "sent"]
            in_flight_at_kill.append(len(unrecorded))
            counted.update(unrecorded)

        # One last run finishes the fan-out; then SIGTERM stops it cleanly.
        process = await spawn(config, log)
        reachable = [c for c in SUBSCRIBERS if c not in BLOCKED]

        def fan_out_done() -> bool:
            status = delivery_status(db)
            return len(status) == len(SUBSCRIBERS) and all(s in ("sent", "failed") for s in status.values())

        assert await wait_for(fan_out_done, 90.0, process, log), "the last run did not finish the fan-out"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        await telegram.stop()
        await yahoo.stop()
    elapsed = time.monotonic() - started

    copies = Counter(m.chat_id for m in telegram.sent)
    lost = [c for c in reachable if copies[c] == 0]
    unexplained = {c: n for c, n in copies.items() if n != 1 + counted[c]}
    duplicates = sum(copies.values()) - len(copies)
    print(f"\ncrash safety (seed {SEED}): {KILLS} SIGKILLs survived ({kills_mid_fan_out} mid-fan-out), "
          f"{len(reachable)} reachable subscribers, lost {len(lost)}, duplicates {duplicates} "
          f"(in flight at each kill: {in_flight_at_kill}; bound {IN_FLIGHT_BOUND} per kill), {elapsed:.0f} s; "
          f"start to first send {statistics.median(to_first_send):.1f} s (median); "
          f"{sum(len(c) for c in FAULTS.values())} send faults injected")
    assert lost == [], f"{len(lost)} reachable subscribers never got the alert"
    assert not BLOCKED & set(copies)
    assert unexplained == {}, "copies beyond those in flight at a kill"
    assert duplicates == sum(in_flight_at_kill)
    assert max(in_flight_at_kill) <= IN_FLIGHT_BOUND
    assert kills_mid_fan_out >= KILLS // 2, "too few kills landed mid-fan-out to prove anything"
    assert not telegram.faults.pending(), "every injected fault was met"
    final = Store.open(db)
    try:
        assert final.outbox_counts() == {"pending": 0, "sent": len(reachable), "retrying": 0, "failed": len(BLOCKED)}
        assert final.alert_count() == 1, "one alert, recorded once across every restart"
        assert {int(s.chat_id) for s in final.active_subscriptions("telegram")} == set(reachable)
    finally:
        final.close()
