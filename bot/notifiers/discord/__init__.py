"""Discord: a bot for server channels and slash commands (`discord`), and webhook-only channels (`discord_webhook`).

Only the settings load with riskon; discord.py (a noticeable part of a second to import) loads when a channel is built.
"""

from __future__ import annotations

from bot.notifiers.base import Notifier
from bot.notifiers.discord.settings import DiscordSettings, DiscordSetupError, DiscordWebhookSettings
from bot.seams import NotifierRuntime


def build_bot(settings: DiscordSettings, runtime: NotifierRuntime) -> Notifier:
    """Build the Discord bot notifier."""
    from bot.notifiers.discord.client import build_bot as build

    return build(settings, runtime)


def build_webhooks(settings: DiscordWebhookSettings, runtime: NotifierRuntime) -> Notifier:
    """Build the webhook-only Discord notifier."""
    from bot.notifiers.discord.webhook import build_webhooks as build

    return build(settings, runtime)


__all__ = ["DiscordSettings", "DiscordSetupError", "DiscordWebhookSettings", "build_bot", "build_webhooks"]
