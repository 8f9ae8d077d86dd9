"""Webhook-only Discord channels: alerts posted through a channel's webhook URL, no bot token needed."""

from __future__ import annotations

import asyncio
import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import SimpleNamespace

import aiohttp
import discord
from discord.utils import MISSING

from bot.notifiers.base import ChatTarget, OutgoingAlert, SendOutcome, failed, retry
from bot.notifiers.discord.outcomes import post_alert
from bot.notifiers.discord.render import NO_MENTIONS, AlertMessage
from bot.notifiers.discord.settings import (
    DiscordSettings,
    DiscordSetupError,
    DiscordWebhookSettings,
    apply_endpoints,
    check_filters,
)
from bot.seams import NotifierRuntime

log = logging.getLogger(__name__)
CHANNEL = "discord_webhook"
# discord.py sleeps through a webhook's 429 inside send(); past this long the send is dropped and the delivery
# job retries when Discord said, so a long rate limit is neither cut short by the send timeout nor held in a task.
WAIT_OUT_SECONDS = 2.0


@dataclass
class _RateLimitWatch:
    """What a send's 429 answers said, set by the HTTP session's trace hook."""

    retry_after: float = 0.0
    too_long: asyncio.Event = field(default_factory=asyncio.Event)


_watch: ContextVar[_RateLimitWatch | None] = ContextVar("riskon_webhook_rate_limit", default=None)


async def _note_rate_limit(session: aiohttp.ClientSession, context: SimpleNamespace,
                           params: aiohttp.TraceRequestEndParams) -> None:
    """Note a 429's wait (Discord's X-RateLimit-Reset-After, else Retry-After) for the send that got it."""
    watch = _watch.get()
    if watch is None or params.response.status != 429:
        return
    headers = params.response.headers
    try:
        watch.retry_after = float(headers.get("X-RateLimit-Reset-After") or headers.get("Retry-After") or 0)
    except ValueError:
        return
    if watch.retry_after > WAIT_OUT_SECONDS:
        watch.too_long.set()


class DiscordWebhookNotifier:
    """Post alerts to configured Discord webhooks; each webhook is one chat, named as in config."""

    name = CHANNEL

    def __init__(self, settings: DiscordWebhookSettings) -> None:
        self.settings = settings
        self.session: aiohttp.ClientSession | None = None
        self.webhooks: dict[str, discord.Webhook] = {}

    async def start(self, listen: bool = True) -> None:
        """Open the HTTP session the webhooks share."""
        apply_endpoints(self.settings)
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(_note_rate_limit)
        self.session = aiohttp.ClientSession(trace_configs=[trace])
        self.webhooks = {name: discord.Webhook.from_url(hook.url.get_secret_value(), session=self.session)
                         for name, hook in self.settings.hooks.items()}

    async def stop(self) -> None:
        """Close the HTTP session."""
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def send(self, chat: ChatTarget, alert: OutgoingAlert) -> SendOutcome:
        """Post one alert as embeds (and its chart) through the chat's webhook."""
        where = f"webhook {chat.chat_id}"
        webhook = self.webhooks.get(chat.chat_id)
        if webhook is None:
            if chat.chat_id not in self.settings.hooks:
                return failed(f"{where}: no such webhook in channels.discord_webhook.hooks", chat_gone=True)
            return retry(f"{where}: not started yet")
        hook = self.settings.hooks[chat.chat_id]
        # discord.py's MISSING is "not given": the same as leaving the argument out.
        thread = discord.Object(int(chat.thread_id)) if chat.thread_id else MISSING
        username = hook.username or MISSING

        async def post(message: AlertMessage) -> None:
            file = message.file() or MISSING  # discord.py's "not given"
            watch = _RateLimitWatch()
            token = _watch.set(watch)  # the send's task inherits it, and so do the trace hook's calls
            try:
                sending = asyncio.ensure_future(webhook.send(
                    embeds=message.embeds, allowed_mentions=NO_MENTIONS, wait=True, thread=thread, username=username,
                    file=file))
            finally:
                _watch.reset(token)
            too_long = asyncio.ensure_future(watch.too_long.wait())
            try:
                await asyncio.wait({sending, too_long}, timeout=self.settings.send_timeout_seconds,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                too_long.cancel()
            if sending.done():
                sending.result()
                return
            sending.cancel()  # a 429 is never delivered: dropping the send while it waits loses nothing
            if watch.too_long.is_set():
                raise discord.RateLimited(watch.retry_after)
            raise TimeoutError

        return await post_alert(alert, post, where, webhook=True)


def build_webhooks(settings: DiscordWebhookSettings, runtime: NotifierRuntime) -> DiscordWebhookNotifier:
    """Check every webhook's filters, subscribe it (and stop webhooks no longer configured), build the notifier."""
    config = runtime.config
    bot_settings = config.channels.get("discord")
    if bot_settings is not None:
        # discord.py keeps one API base per process (on a class): both channels must agree on it.
        bot_base = DiscordSettings.model_validate(bot_settings).api_base
        if settings.api_base is None:
            settings = settings.model_copy(update={"api_base": bot_base})
        elif settings.api_base != bot_base:
            raise DiscordSetupError("channels.discord_webhook.api_base differs from channels.discord.api_base; "
                                    "discord.py has one API base per process: set the same (or only the bot's)")
    problems: list[str] = []
    for name, hook in settings.hooks.items():
        problems += check_filters(config, hook.rules, hook.symbols, f"channels.discord_webhook.hooks.{name}")
    if problems:
        raise DiscordSetupError("; ".join(problems))
    store = runtime.store
    for name, hook in settings.hooks.items():
        store.subscribe(CHANNEL, name, hook.thread_id or "", hook.rules, hook.symbols)
    for subscription in store.active_subscriptions(CHANNEL):
        configured = settings.hooks.get(subscription.chat_id)
        if configured is None or (configured.thread_id or "") != subscription.thread_id:
            store.deactivate_subscription(subscription.id, "webhook removed from config")
            log.info("webhook %s is no longer configured: its subscription stops", subscription.chat_id)
    return DiscordWebhookNotifier(settings)
