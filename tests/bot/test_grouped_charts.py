"""A message grouping several alerts keeps a picture: the chart of its first alert, on Telegram and on Discord."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest

from alerts.events import AlertEvent
from alerts.messages import format_alert
from bot.config import parse_config
from bot.feeds.replay import read_daily_csv
from bot.runtime import Runtime
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import TOKEN, FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
ALICE = 111
DAY = date(2026, 8, 4)
NOW = datetime(2026, 8, 4, 21, 0, tzinfo=timezone.utc)


async def test_a_grouped_message_carries_the_chart_of_its_first_alert(store, market_data, tmp_path):
    telegram = await FakeTelegram(chat_per_second=5, max_poll_seconds=0.3).start()
    discord = await FakeDiscord().start()
    telegram.add_private_chat(ALICE)
    guild = discord.add_guild()
    channel = discord.channel(guild, "alerts")
    config = parse_config(json.dumps({
        "feeds": {"replay": {"kind": "replay", "path": str(market_data)}},
        "symbols": [{"id": "^RUT", "feed": "replay", "csv": "RUT"}, {"id": "IWM", "feed": "replay", "asset_class": "etf"}],
        "rules": [{"id": "smallcap_ath", "kind": "new_ath", "symbols": ["^RUT", "IWM"]}],
        "channels": {"telegram": {"token": "${TELEGRAM_BOT_TOKEN}", "base_url": telegram.base_url,
                                  "poll_timeout_seconds": 1},
                     "discord": {"token": "${DISCORD_BOT_TOKEN}", "api_base": discord.api_base,
                                 "gateway": discord.gateway, "guild_ready_timeout": 0.05}},
    }), env={"TELEGRAM_BOT_TOKEN": TOKEN, "DISCORD_BOT_TOKEN": discord.token})
    for symbol, stem in (("^RUT", "RUT"), ("IWM", "IWM")):
        bars, _ = read_daily_csv(market_data / f"{stem}.csv")
        store.upsert_bars(symbol, [b for b in bars if b.time.date() <= DAY])
    runtime = Runtime(config, store, feeds={}, clock=lambda: NOW)
    await runtime.start()
    try:
        store.subscribe("telegram", str(ALICE))
        store.subscribe("discord", channel["id"])
        for symbol in ("^RUT", "IWM"):  # one engine cycle: the two alerts go to each chat as one message
            close = store.load_bars(symbol)[-1].close
            event = AlertEvent("smallcap_ath", "new_ath", symbol, datetime(2026, 8, 4, tzinfo=timezone.utc),
                               {"price": close, "by": "close", "previous_ath": close * 0.99, "pct_above_previous": 1.0,
                                "previous_ath_time": "2026-06-30", "all_time": True})
            store.record_alert(event, format_alert(event), NOW, store.recipients(event, NOW))
        report = await runtime.deliver()
    finally:
        await runtime.close()
        await telegram.stop()
        await discord.stop()

    assert report.outcomes == {("telegram", "sent"): 2, ("discord", "sent"): 2}
    [message] = telegram.messages_to(ALICE)  # short enough for a caption: one photo with the text under it
    assert message.text.startswith("<b>2 alerts</b>") and "^RUT new all-time high" in message.text
    assert "IWM new all-time high" in message.text
    assert message.photo is not None and message.photo.startswith(b"\x89PNG")
    [posted] = discord.sent_to(channel["id"])
    assert [e["title"].split(":")[0] for e in posted.embeds] == ["📈 ^RUT new all-time high", "📈 IWM new all-time high"]
    assert posted.embeds[0]["image"]["url"] == "attachment://chart.png" and posted.files
    # The first alert's chart: the same picture riskon draws for ^RUT's alert alone.
    assert runtime.charts.draws == 1
