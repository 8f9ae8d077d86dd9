"""End to end: real ^RUT history replayed, its new highs alerted to chats that subscribed by command."""

from __future__ import annotations

import pytest

from bot.config import parse_config
from bot.feeds import FEEDS
from bot.runtime import Runtime
from storage import Store
from tests.fakes.telegram_api import TOKEN, FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ALICE, BOB, GROUP_ADMIN, FORUM, TOPIC, BLOCKED = 111, 112, 301, -1002, 7, 113


async def test_replayed_highs_reach_each_subscribed_chat_once(market_data, tmp_path):
    fake = await FakeTelegram(max_poll_seconds=1).start()
    for user in (ALICE, BOB, BLOCKED):
        fake.add_private_chat(user)
    fake.add_group(FORUM, admins={GROUP_ADMIN}, forum=True, topics={TOPIC})
    config = parse_config(f"""
feeds: {{replay: {{kind: replay, path: "{market_data}", start: "2026-07-01", end: "2026-08-31"}}}}
symbols: [{{id: "^RUT", feed: replay, csv: RUT}}, {{id: BTC, feed: replay, csv: BTC-USD, asset_class: crypto}}]
rules: [{{id: rut_ath, kind: new_ath, symbols: ["^RUT"]}}, {{id: btc_ath, kind: new_ath, symbols: [BTC]}}]
channels:
  telegram: {{token: "${{TELEGRAM_BOT_TOKEN}}", base_url: "{fake.base_url}", poll_timeout_seconds: 1}}
""", env={"TELEGRAM_BOT_TOKEN": TOKEN})
    store = Store.open(tmp_path / "riskon.db")
    replay = FEEDS["replay"].build("replay", FEEDS["replay"].Settings(**config.feeds["replay"].settings),
                                   config.symbols, store)
    replay.load()
    runtime = Runtime(config, store, clock=replay.clock, live_since=replay.live_since(), feeds={"replay": replay})
    await runtime.start()
    try:
        for chat, user, text, thread in ((ALICE, ALICE, "/subscribe", None), (BOB, BOB, "/subscribe BTC", None),
                                         (FORUM, GROUP_ADMIN, "/subscribe rut_ath", TOPIC),
                                         (BLOCKED, BLOCKED, "/subscribe", None)):
            fake.post_command(chat, user, text, thread)
        await fake.wait_until(lambda: len(store.active_subscriptions("telegram")) == 4)
        await fake.wait_until(lambda: len(fake.sent) == 4)  # the four confirmations
        fake.chats[BLOCKED].blocked = True
        confirmations = len(fake.sent)
        for _ in range(200):
            await runtime.poll("replay")
            await runtime.deliver()
            if replay.exhausted:
                break
        await runtime.deliver()
    finally:
        await runtime.close()
    # A restart with the same database sends nothing again.
    again = Runtime(config, store, clock=replay.clock, live_since=replay.live_since(), feeds={"replay": replay})
    await again.deliver()
    await fake.stop()

    alerts = store.recent_alerts(100)
    rut = [a for a in alerts if a.symbol == "^RUT"]
    assert rut, "the replay crosses ^RUT's August 2026 highs"
    sent = fake.sent[confirmations:]
    to = lambda chat, thread=None: [m.text for m in sent if m.chat_id == chat and m.thread_id == thread]  # noqa: E731
    assert len(to(ALICE)) == len(alerts)
    assert len(to(BOB)) == len(alerts) - len(rut)
    assert len(to(FORUM, TOPIC)) == len(rut)
    assert all("^RUT new all-time high" in text for text in to(FORUM, TOPIC))
    assert len(set(to(ALICE))) == len(to(ALICE)), "no alert twice"
    assert to(BLOCKED) == []
    assert not store.subscription("telegram", str(BLOCKED)).active
    store.close()
