"""Security: no secret in any log line, reply, error or endpoint of a full run; admin commands refuse everyone
else; the database is readable by its owner only."""

from __future__ import annotations

import json
import os
import stat
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest

from bot.commands import CommandContext, dispatch
from bot.runtime import Runtime
from storage import Store
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.ops.bot_process import BotProcess

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

USER, ADMIN, SUBSCRIBER = 111, 900, 222


def write_history(folder: Path, stem: str, today: date, future_days: int) -> None:
    """Write 120 days up to yesterday, then `future_days` days from tomorrow, each a new all-time high."""
    folder.mkdir(exist_ok=True)
    lines = ["date,open,high,low,close,volume"]
    for offset in range(-120, future_days + 1):
        if offset == 0:
            continue  # today is not over: no bar yet
        close = 2000.0 + offset * 10 if offset > 0 else 1900.0 + offset
        lines.append(f"{today + timedelta(days=offset)},{close},{close + 5},{close - 5},{close},1000")
    (folder / f"{stem}.csv").write_text("\n".join(lines) + "\n")


def live_config(folder: Path, telegram: FakeTelegram, discord_api_base: str | None, **extra: str) -> str:
    """Return a config for `riskon run`: ^RUT replayed into the future (live alerts), BTC on a dead exchange."""
    tomorrow = datetime.now(timezone.utc).date() + timedelta(days=1)
    webhook = (f'  discord_webhook: {{api_base: "{discord_api_base}", send_timeout_seconds: 5, '
               f'hooks: {{alerts: {{url: "${{DISCORD_WEBHOOK_URL}}"}}}}}}\n') if discord_api_base else ""
    return f"""
storage: {{path: {extra.get("db", "riskon.db")}}}
schedule: {{deliver_every_seconds: 0.5, retry_base_seconds: 0.5, retry_max_seconds: 2}}
feeds:
  replay: {{kind: replay, path: "{folder}", start: "{tomorrow}", every_seconds: {extra.get("every", "0.5")}}}
  dead: {{kind: exchange, exchange: kraken, base_url: "http://127.0.0.1:9", every_seconds: 1, timeout_seconds: 1}}
symbols:
  - {{id: "^RUT", feed: replay, csv: RUT, asset_class: index}}
  - {{id: BTC, feed: dead, source: BTC/USD, asset_class: crypto}}
rules:
  - {{id: rut_ath, kind: new_ath, symbols: ["^RUT"], rearm_pct: 0, min_history_days: 0}}
admins: ["telegram:{ADMIN}"]
channels:
  telegram: {{token: "${{TELEGRAM_BOT_TOKEN}}", base_url: "{telegram.base_url}", poll_timeout_seconds: 1}}
{webhook}health: {{enabled: true, port: 0}}
"""


async def test_a_full_run_shows_no_secret_in_any_log_line_reply_error_or_endpoint(tmp_path):
    telegram = await FakeTelegram(max_poll_seconds=1).start()
    discord = await FakeDiscord().start()
    guild = discord.add_guild()
    channel = discord.channel(guild, "alerts")
    webhook_url = discord.add_webhook(channel["id"])
    webhook_token = webhook_url.rsplit("/", 1)[1]
    secrets = [TOKEN, TOKEN.split(":")[1], webhook_url, webhook_token]
    today = datetime.now(timezone.utc).date()
    # A new high every 0.5 s for a minute: alerts keep coming however slowly a loaded machine runs the test's steps
    # (12 days ran out before the subscriber's retries were done once).
    write_history(tmp_path / "data", "RUT", today, future_days=120)
    (tmp_path / "config.yaml").write_text(live_config(tmp_path / "data", telegram, discord.api_base))
    telegram.add_private_chat(USER)
    telegram.add_private_chat(ADMIN)
    telegram.add_private_chat(SUBSCRIBER)
    bot = BotProcess(["run", "--config", "config.yaml", "--log-level", "DEBUG"], tmp_path,
                     env={"TELEGRAM_BOT_TOKEN": TOKEN, "DISCORD_WEBHOOK_URL": webhook_url}, umask=0)
    await bot.start()
    bodies: list[str] = []
    try:
        port = int((await bot.wait_for_line(r"health endpoint on http://127\.0\.0\.1:(\d+)", 60)).group(1))
        # A subscriber whose chat fails for a while: the errors are logged and stored, then it gets through.
        telegram.post_command(SUBSCRIBER, SUBSCRIBER, "/subscribe")
        await telegram.wait_until(lambda: len(telegram.messages_to(SUBSCRIBER)) == 1, 30)
        telegram.inject("500", SUBSCRIBER, times=2)
        telegram.inject("429", SUBSCRIBER, times=1)
        # One command at a time, as people type them.
        for user, command in [(USER, c) for c in ("/pause", "/resume", "/reload", "/health", "/status", "/status BTC")] \
                + [(ADMIN, c) for c in ("/health", "/status", "/status ^RUT")]:
            answered = len(telegram.messages_to(user))
            telegram.post_command(user, user, command)
            await telegram.wait_until(lambda user=user, answered=answered: len(telegram.messages_to(user)) > answered, 20)
        await telegram.wait_until(lambda: not telegram.faults.pending(SUBSCRIBER) and len(
            [m for m in telegram.messages_to(SUBSCRIBER) if "new all-time high" in m.text]) >= 2, 30)
        await discord.wait_for_messages(3, timeout=30)
        async with aiohttp.ClientSession() as session:
            for path in ("/healthz", "/metrics"):
                async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                    bodies.append(await response.text())
        database = tmp_path / "riskon.db"
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.glob("riskon.db*")}
        code, _ = await bot.stop()
    except AssertionError as exc:
        sent = "\n".join(f"{m.chat_id}: {m.text[:80]}" for m in telegram.sent)
        await bot.kill()
        (tmp_path / "bot.log").write_text("\n".join(bot.lines))
        raise AssertionError(f"{exc}\nsent:\n{sent}\nlog: {tmp_path / 'bot.log'}") from None
    finally:
        await bot.kill()
        await discord.stop()
        await telegram.stop()

    assert code == 0, "\n".join(bot.lines[-30:])
    # Owner-only, even under umask 000: the database and its WAL and shared-memory files.
    assert {"riskon.db", "riskon.db-wal", "riskon.db-shm"} <= set(modes) and set(modes.values()) == {0o600}, modes
    health = json.loads(bodies[0])
    assert health["status"] == "degraded" and any("feed dead" in r for r in health["reasons"])
    assert "riskon_deliveries_total" in bodies[1]

    replies = [m.text for m in telegram.sent] + [m.content for m in discord.messages]
    assert any(r.startswith("Up since") for r in replies), "the admin's /health was answered"
    assert [r for r in replies if "admins only" in r] == [
        f"/{name} is for riskon's admins only." for name in ("pause", "resume", "reload", "health")]
    logged = bot.lines
    assert len(logged) > 50 and any("DEBUG" in line for line in logged)
    assert any(f"telegram chat {SUBSCRIBER}: " in line and "retrying in" in line for line in logged), "errors logged"
    stored = database.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("riskon.db-*"))
    for secret in secrets:
        for where, texts in (("log", logged), ("reply", replies), ("endpoint", bodies)):
            leaks = [text for text in texts if secret in text]
            assert not leaks, f"a secret shows in a {where}: {leaks[0][:300]}"
        assert secret.encode() not in stored, "a secret was written to the database"


# --- admin commands refuse everyone else: one test per command ------------------------------------------------

async def _yes() -> bool:
    return True


@pytest.fixture
def runtime_config():
    return ('feeds: {replay: {kind: replay, path: "."}}\nsymbols: [{id: BTC, feed: replay, asset_class: crypto}]\n'
            'rules: [{id: btc_ath, kind: new_ath, symbols: [BTC]}]\nadmins: ["telegram:900", "901"]\n')


OUTSIDERS = {
    "private user": CommandContext("telegram", "111", "", "111", True),
    "group admin": CommandContext("telegram", "-100", "", "301", False, _yes),
    "admin id on another channel": CommandContext("discord", "5", "", "900", False, _yes),
    "no user": CommandContext("telegram", "-100", "", "", False, _yes),
}


async def refused(runtime: Runtime, name: str) -> None:
    for who, ctx in OUTSIDERS.items():
        reply = await dispatch(runtime, ctx, name, [])
        assert reply.text == f"/{name} is for riskon's admins only.", who
    admin = await dispatch(runtime, CommandContext("telegram", "900", "", "900", True), name, [])
    assert "admins only" not in admin.text


async def test_pause_refuses_non_admins(runtime):
    await refused(runtime, "pause")
    await runtime.set_paused(False)
    for ctx in OUTSIDERS.values():
        await dispatch(runtime, ctx, "pause", [])
    assert runtime.paused is False


async def test_resume_refuses_non_admins(runtime):
    await runtime.set_paused(True)
    for ctx in OUTSIDERS.values():
        await dispatch(runtime, ctx, "resume", [])
    assert runtime.paused is True
    await refused(runtime, "resume")


async def test_reload_refuses_non_admins(runtime, tmp_path):
    before = runtime.config
    (tmp_path / "config.yaml").write_text("{}")  # a reload would drop every rule
    for ctx in OUTSIDERS.values():
        assert "admins only" in (await dispatch(runtime, ctx, "reload", [])).text
    assert runtime.config is before


async def test_health_refuses_non_admins(runtime):
    await refused(runtime, "health")


async def test_the_admin_list_in_help_is_shown_to_admins_only(runtime):
    outsider = await dispatch(runtime, OUTSIDERS["group admin"], "help", [])
    admin = await dispatch(runtime, CommandContext("telegram", "1", "", "901", True), "help", [])
    assert "/pause" not in outsider.text and "/pause" in admin.text


def test_the_database_is_created_owner_only_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        Store.open(tmp_path / "fresh.db").close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "fresh.db").stat().st_mode) == 0o600
