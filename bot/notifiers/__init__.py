"""The one registry of chat channels, by their name under `channels:` in config.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pydantic import BaseModel

from bot.notifiers.base import ChatTarget, Notifier, OutgoingAlert, SendOutcome
from bot.notifiers.console import ConsoleNotifier, ConsoleSettings
from bot.notifiers.discord import DiscordSettings, DiscordWebhookSettings, build_bot, build_webhooks
from bot.notifiers.telegram import TelegramSettings, build_telegram


@dataclass(frozen=True)
class NotifierKind:
    """A channel kind: its settings model and how to build its notifier."""

    Settings: type[BaseModel]
    # build(settings, runtime) -> Notifier
    build: Callable[..., Notifier]


NOTIFIERS: dict[str, NotifierKind] = {
    "console": NotifierKind(ConsoleSettings, lambda settings, runtime: ConsoleNotifier(runtime.console_stream)),
    "telegram": NotifierKind(TelegramSettings, build_telegram),
    "discord": NotifierKind(DiscordSettings, build_bot),
    "discord_webhook": NotifierKind(DiscordWebhookSettings, build_webhooks),
}

__all__ = ["NOTIFIERS", "ChatTarget", "Notifier", "NotifierKind", "OutgoingAlert", "SendOutcome"]
