"""The one registry of chat channels, by their name under `channels:` in config.yaml; a channel's code loads when
the config names it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pydantic import BaseModel

from alerts.registry import LazyRegistry
from bot.notifiers.base import ChatTarget, Notifier, OutgoingAlert, SendOutcome


@dataclass(frozen=True)
class NotifierKind:
    """A channel kind: its settings model and how to build its notifier."""

    Settings: type[BaseModel]
    # build(settings, runtime) -> Notifier
    build: Callable[..., Notifier]


def _console() -> NotifierKind:
    from bot.notifiers.console import ConsoleNotifier, ConsoleSettings

    return NotifierKind(ConsoleSettings, lambda settings, runtime: ConsoleNotifier(runtime.console_stream))


def _telegram() -> NotifierKind:
    from bot.notifiers.telegram import TelegramSettings, build_telegram

    return NotifierKind(TelegramSettings, build_telegram)


def _discord() -> NotifierKind:
    from bot.notifiers.discord import DiscordSettings, build_bot

    return NotifierKind(DiscordSettings, build_bot)


def _discord_webhook() -> NotifierKind:
    from bot.notifiers.discord import DiscordWebhookSettings, build_webhooks

    return NotifierKind(DiscordWebhookSettings, build_webhooks)


NOTIFIERS: LazyRegistry[NotifierKind] = LazyRegistry({
    "console": _console,
    "telegram": _telegram,
    "discord": _discord,
    "discord_webhook": _discord_webhook,
})

__all__ = ["NOTIFIERS", "ChatTarget", "Notifier", "NotifierKind", "OutgoingAlert", "SendOutcome"]
