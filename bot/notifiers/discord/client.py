"""The Discord bot channel: alerts to server channels and threads as embeds, slash commands, all in riskon's loop."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random

import discord
from discord.utils import MISSING

from bot.backoff import backoff_seconds
from bot.notifiers.base import ChatTarget, OutgoingAlert, SendOutcome, failed, retry
from bot.notifiers.discord.outcomes import post_alert
from bot.notifiers.discord.render import NO_MENTIONS, AlertMessage, send_nonce
from bot.notifiers.discord.settings import DiscordSettings, DiscordSetupError, apply_endpoints
from bot.notifiers.discord.slash import CHANNEL, build_tree, synced_commands_key
from bot.seams import NotifierRuntime

log = logging.getLogger(__name__)
STOP_TIMEOUT_SECONDS = 10.0
MAX_LOGIN_RETRY_SECONDS = 300.0


class DiscordNotifier:
    """A discord.py client run as a task of riskon's own event loop (never `client.run`, which owns the loop)."""

    name = CHANNEL

    def __init__(self, settings: DiscordSettings, runtime: NotifierRuntime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.client: discord.Client | None = None
        self.tree: discord.app_commands.CommandTree | None = None
        self.ready = asyncio.Event()
        self._gateway: asyncio.Task[None] | None = None
        self._login: asyncio.Task[None] | None = None
        self._logged_in = False
        self._pace = asyncio.Lock()
        self._next_slot = 0.0
        self._rng = random.Random()

    async def start(self, listen: bool = True) -> None:
        """Log in; with `listen`, also register the slash commands and connect to the gateway (waiting for READY)."""
        apply_endpoints(self.settings)
        if not listen:
            await self._log_in()  # alerts go out over REST: no gateway, no command sync
            return
        try:
            await self._log_in()
        except DiscordSetupError:
            raise
        except Exception as exc:  # Discord or the network is down: keep trying; alerts wait in the outbox
            log.warning("discord: cannot log in yet (%s: %s); retrying in the background", type(exc).__name__, exc)
            self._login = asyncio.create_task(self._log_in_later(), name="discord-login")
            return
        await self._go_online()
        try:
            await asyncio.wait_for(self.ready.wait(), self.settings.ready_timeout_seconds)
        except TimeoutError:
            # Alerts still go out over REST; slash commands work once the gateway connects.
            log.warning("discord: gateway not ready after %.0f s; still trying", self.settings.ready_timeout_seconds)

    def _new_client(self) -> discord.Client:
        # Guilds is the only intent needed: it brings the channels, threads and roles access checks read.
        # Slash commands arrive as interactions, so no privileged intent (message content, members) is asked.
        intents = discord.Intents.none()
        intents.guilds = True
        # riskon never joins voice: spare users discord.py's warnings about voice libraries.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        client = discord.Client(
            intents=intents,
            guild_ready_timeout=self.settings.guild_ready_timeout,
            max_ratelimit_timeout=self.settings.max_ratelimit_wait_seconds,
        )

        async def on_ready() -> None:
            self.ready.set()
            log.info("discord: connected as %s to %d servers", client.user, len(client.guilds))

        client.event(on_ready)
        return client

    async def _log_in(self) -> None:
        client = self._new_client()
        try:
            await client.login(self.settings.token.get_secret_value())
        except discord.LoginFailure:
            await client.close()
            raise DiscordSetupError("channels.discord: Discord refused the bot token (401 Unauthorized)") from None
        except BaseException:
            await client.close()  # a client that failed to log in is not reused: its session is closed here
            raise
        self.client, self.tree = client, build_tree(client, self.runtime, self.settings)
        self._logged_in = True

    async def _log_in_later(self) -> None:
        failures = 1  # the login at start
        delay = backoff_seconds(failures, self.settings.login_retry_seconds, MAX_LOGIN_RETRY_SECONDS, self._rng)
        while True:
            await asyncio.sleep(delay)
            try:
                await self._log_in()
                break
            except DiscordSetupError as exc:
                log.error("%s", exc)
                return
            except Exception as exc:
                failures += 1
                delay = backoff_seconds(failures, self.settings.login_retry_seconds, MAX_LOGIN_RETRY_SECONDS,
                                        self._rng)
                log.warning("discord: still cannot log in (%s: %s); next try in %.0f s", type(exc).__name__, exc, delay)
        log.info("discord: logged in")
        await self._go_online()

    async def _go_online(self) -> None:
        if self.settings.sync_commands:
            await self.sync_commands()
        self._gateway = asyncio.create_task(self._connect(), name="discord-gateway")

    async def _connect(self) -> None:
        assert self.client is not None
        try:
            await self.client.connect(reconnect=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # e.g. an intent Discord refuses: slash commands stop, alerts still go out
            log.error("discord: gateway connection ended: %s: %s", type(exc).__name__, exc)

    async def sync_commands(self) -> None:
        """Register the slash commands with Discord (per configured server, else globally) when they changed."""
        assert self.tree is not None and self.client is not None
        scopes: list[discord.Object | None] = [discord.Object(int(g)) for g in self.settings.guilds] or [None]
        store = self.runtime.store
        for guild in scopes:
            if guild is not None:
                self.tree.copy_global_to(guild=guild)
            where = f"server {guild.id}" if guild is not None else "globally"
            key = synced_commands_key(self.client.application_id, guild.id if guild is not None else None)
            # discord.py's maintainers advise against syncing at every start: Discord rate-limits it hard, and
            # an unchanged tree needs nothing. The hash of what was last synced says whether it changed.
            tree_hash = command_tree_hash(self.tree, guild)
            if store.setting(key) == tree_hash:
                log.info("discord: slash commands unchanged since the last sync (%s); not syncing", where)
                continue
            try:
                synced = await self.tree.sync(guild=guild)
            except discord.HTTPException as exc:  # e.g. the bot lacks the applications.commands scope there
                log.warning("discord: slash commands not synced %s: %s", where, exc)
                continue
            store.set_setting(key, tree_hash)
            log.info("discord: %d slash commands synced %s", len(synced), where)

    async def stop(self) -> None:
        """Close the gateway and HTTP session."""
        if self._login is not None and not self._login.done():
            self._login.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._login
        if self.client is not None:
            await self.client.close()
        if self._gateway is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._gateway, STOP_TIMEOUT_SECONDS)
        self._logged_in = False

    async def send(self, chat: ChatTarget, alert: OutgoingAlert) -> SendOutcome:
        """Post one alert to a channel (or its thread) as embeds, its chart attached when there is one."""
        target = chat.thread_id or chat.chat_id
        where = f"discord channel {target}"
        if not target.isdigit():
            return failed(f"{where}: not a Discord channel id", chat_gone=True)
        if self.client is None or not self._logged_in:
            return retry("discord: not logged in (see the start-up log)")
        channel = self.client.get_partial_messageable(int(target))
        nonce = send_nonce(alert, chat)

        async def post(message: AlertMessage) -> None:
            await self._wait_for_slot()
            file = message.file() or MISSING  # discord.py's "not given"
            # The same nonce for the same alert and chat: if a crash hid Discord's answer, the resend is dropped.
            await channel.send(embeds=message.embeds, allowed_mentions=NO_MENTIONS, nonce=nonce, file=file)

        return await post_alert(alert, post, where)


    async def _wait_for_slot(self) -> None:
        """Space messages evenly at `messages_per_second`, under Discord's global limit (a 429 there stalls all)."""
        loop = asyncio.get_running_loop()
        async with self._pace:
            now = loop.time()
            if self._next_slot > now:
                await asyncio.sleep(self._next_slot - now)
            self._next_slot = max(now, self._next_slot) + 1.0 / self.settings.messages_per_second


def command_tree_hash(tree: discord.app_commands.CommandTree, guild: discord.abc.Snowflake | None) -> str:
    """Hash the commands as Discord would receive them for one scope (a server, or global)."""
    payload = [command.to_dict(tree) for command in tree.get_commands(guild=guild)]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def build_bot(settings: DiscordSettings, runtime: NotifierRuntime) -> DiscordNotifier:
    """Build the notifier; it logs in and connects on start."""
    return DiscordNotifier(settings, runtime)
