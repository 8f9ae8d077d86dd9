"""Telegram: alerts to chats, groups and forum topics, and the chat commands, with python-telegram-bot 22."""

from bot.notifiers.telegram.notifier import TelegramNotifier
from bot.notifiers.telegram.settings import TelegramSettings
from bot.notifiers.telegram.text import CAPTION_LIMIT, TEXT_LIMIT, split_text, to_html

__all__ = ["CAPTION_LIMIT", "TEXT_LIMIT", "TelegramNotifier", "TelegramSettings", "split_text", "to_html"]
