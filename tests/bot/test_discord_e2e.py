"""End to end: real ^RUT and BTC history replayed, new highs posted to Discord channels subscribed by slash command."""

from __future__ import annotations

import pytest

from bot.config import parse_config
from bot.feeds import FEEDS
from bot.runtime import Runtime
from storage import Store
from tests.fakes.discord_api import MANAGE_CHANNELS, MEMBER_PERMISSIONS, FakeDiscord, riskon_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
MANAGER = MEMBER_PERMISSIONS | MANAGE_CHANNELS


async def test_replayed_highs_reach_each_subscribed_channel_and_webhook_once(market_data, tmp_path):
    fake = await FakeDiscord(channel_window=0.2).start()
    guild = fake.add_guild()
    everything, crypto = fake.add_channel(guild, "everything"), fake.add_channel(guild, "crypto")
    rut_thread = fake.add_channel(guild, "rut-highs", parent_id=everything["id"])
    webhook_url = fake.add_webhook(fake.channel(guild, "alerts")["id"])
    text = riskon_config(
        market_data,
        bot={"token": "${DISCORD_BOT_TOKEN}", "api_base": fake.api_base, "gateway": fake.gateway,
             "guild_ready_timeout": 0.05},
        webhook={"hooks": {"announcements": {"url": "${ANNOUNCE}", "rules": ["rut_ath"]}}},
    )
    config = parse_config(text.replace('"^RUT", "feed": "replay"', '"^RUT", "feed": "replay", "csv": "RUT"')
                          .replace('"BTC", "feed": "replay"', '"BTC", "feed": "replay", "csv": "BTC-USD"')
                          .replace(f'"path": "{market_data}"',
                                   f'"path": "{market_data}", "start": "2026-07-01", "end": "2026-08-31"'),
                          env={"DISCORD_BOT_TOKEN": fake.token, "ANNOUNCE": webhook_url})
    store = Store.open(tmp_path / "riskon.db")
    replay = FEEDS["replay"].build("replay", FEEDS["replay"].Settings(**config.feeds["replay"].settings),
                                   config.symbols, store)
    replay.load()
    runtime = Runtime(config, store, clock=replay.clock, live_since=replay.live_since(), feeds={"replay": replay})
    await runtime.start()
    try:
        for channel, what in ((everything, None), (crypto, "BTC"), (rut_thread, "rut_ath")):
            answer = await fake.interact(guild, channel, "subscribe", {"what": what} if what else {},
                                         permissions=MANAGER)
            assert "Subscribed" in fake.text_of(answer)
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
    await again.start()
    await again.deliver()
    await again.close()
    await fake.stop()

    alerts = store.recent_alerts(100)
    rut = [a for a in alerts if a.symbol == "^RUT"]
    assert rut, "the replay crosses ^RUT's August 2026 highs"
    titles = lambda channel_id: [m.embeds[0]["title"] for m in fake.sent_to(channel_id)]  # noqa: E731
    assert len(titles(everything["id"])) == len(alerts)  # a thread's messages go to the thread's own id
    assert len(titles(crypto["id"])) == len(alerts) - len(rut)
    assert all("BTC" in title for title in titles(crypto["id"]))
    assert len(titles(rut_thread["id"])) == len(rut)
    hooked = [m for m in fake.messages if m.webhook_id]
    assert len(hooked) == len(rut) and all("^RUT new all-time high" in m.embeds[0]["title"] for m in hooked)
    assert len({(m.channel_id, m.embeds[0]["title"]) for m in fake.messages}) == len(fake.messages), "no alert twice"
    charted = [m for m in fake.messages if m.files]
    assert len(charted) == len(fake.messages), "every alert carries its chart"
    assert all(m.embeds[0]["image"]["url"] == "attachment://chart.png" for m in charted)
    assert store.outbox_counts()["pending"] == 0 and store.outbox_counts()["failed"] == 0
