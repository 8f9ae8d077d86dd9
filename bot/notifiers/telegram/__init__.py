"""Telegram: alerts to chats, groups and forum topics, and the chat commands, with python-telegram-bot 22.

Only the settings and text helpers load with riskon; python-telegram-bot (and httpx) load when a channel is built.
"""

from __future__ import annotations

from bot.notifiers.base import Notifier
from bot.notifiers.telegram.settings import TelegramSettings
from bot.notifiers.telegram.text import CAPTION_LIMIT, TEXT_LIMIT, split_text, to_html
from bot.seams import NotifierRuntime


def build_telegram(settings: TelegramSettings, runtime: NotifierRuntime) -> Notifier:
    """Build the Telegram notifier."""
    from bot.notifiers.telegram.notifier import TelegramNotifier

    return TelegramNotifier(settings, runtime)


__all__ = ["CAPTION_LIMIT", "TEXT_LIMIT", "TelegramSettings", "build_telegram", "split_text", "to_html"]
