"""What the chat commands are (name, usage, who may run them), who typed one and where, and what it answers."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

MAX_ALERTS_SHOWN = 50
MAX_ARGS, MAX_ARG_LENGTH = 40, 64  # more than any real command needs; keeps replies from echoing a flood
MAX_MUTE = timedelta(days=365)
COMMANDS_PER_MINUTE, COMMAND_BURST = 30.0, 30.0  # per user: a burst of 30, then one every 2 s


@dataclass(frozen=True)
class CommandSpec:
    """One chat command: its name, usage line, what it does, and who may run it."""

    name: str
    usage: str
    description: str
    admin_only: bool = False  # riskon's own admins (config `admins`), in any chat
    changes_subscriptions: bool = False  # private chat: its owner; group: the group's admins


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("start", "/start", "Say hello and how to get alerts"),
    CommandSpec("help", "/help", "List the commands"),
    CommandSpec("status", "/status [SYMBOL]", "Prices, all-time highs, levels, flows, data freshness, bot health"),
    CommandSpec("subscribe", "/subscribe [RULE|SYMBOL ...]", "Get alerts here (all, or only these rules/symbols)",
                changes_subscriptions=True),
    CommandSpec("unsubscribe", "/unsubscribe [RULE|SYMBOL ...|all]", "Stop alerts here (all, or these rules/symbols)",
                changes_subscriptions=True),
    CommandSpec("list", "/list", "Show this chat's subscription and mutes"),
    CommandSpec("alerts", "/alerts [N]", "Show the N most recent alerts (default 5)"),
    CommandSpec("rules", "/rules", "Say what is watched, in words"),
    CommandSpec("mute", "/mute DURATION [RULE|SYMBOL]", "Silence alerts here for a while, e.g. /mute 6h BTC",
                changes_subscriptions=True),
    CommandSpec("unmute", "/unmute", "Lift every mute of this chat", changes_subscriptions=True),
    CommandSpec("chart", "/chart SYMBOL", "Draw a chart of a symbol"),
    CommandSpec("pause", "/pause", "Stop sending alerts everywhere (admin)", admin_only=True),
    CommandSpec("resume", "/resume", "Send alerts again (admin)", admin_only=True),
    CommandSpec("reload", "/reload", "Re-read config.yaml, keeping state (admin)", admin_only=True),
    CommandSpec("health", "/health", "Feeds, outbox and uptime in detail (admin)", admin_only=True),
    CommandSpec("fragility", "/fragility [FUND]", "Take the fragility snapshot now, out of schedule (admin)",
                admin_only=True),
)
SPECS: dict[str, CommandSpec] = {spec.name: spec for spec in COMMANDS}


async def _always() -> bool:
    return True


@dataclass(frozen=True)
class CommandContext:
    """Who typed a command, and where: the chat, the forum topic or thread, and the user."""

    channel: str  # the notifier name subscriptions are stored under: "telegram", "discord"
    chat_id: str
    thread_id: str = ""  # a forum topic (Telegram message_thread_id) or thread; "" for the chat itself
    user_id: str = ""
    is_private: bool = False
    # Ask the chat service whether this user may change this chat's subscriptions (a group admin).
    may_manage: Callable[[], Awaitable[bool]] = field(default=_always, compare=False)
    # Who may change subscriptions, in the chat service's words (for the refusal).
    managers: str = "this group's admins"


@dataclass(frozen=True)
class Reply:
    """What a command answers: plain text, and an optional PNG image."""

    text: str
    image_png: bytes | None = None


class UsageError(Exception):
    """Signal bad arguments; the reply names what is wrong and gives the usage line."""


class CommandRateLimit:
    """Let each user run a burst of commands, then a steady number a minute (a token bucket per user)."""

    def __init__(self, per_minute: float = COMMANDS_PER_MINUTE, burst: float = COMMAND_BURST,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = per_minute / 60.0, burst, clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # user -> (tokens, when counted)

    def wait_needed(self, ctx: CommandContext) -> float:
        """Take one command from the user's bucket; return 0 when it may run, else seconds until one may."""
        now = self.clock()
        key = (ctx.channel, ctx.user_id or f"chat:{ctx.chat_id}")  # anonymous senders share their chat's bucket
        tokens, then = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[key] = (tokens - 1, now)
        if len(self._buckets) > 10_000:  # forget users whose buckets have refilled: memory stays bounded
            full = now - self.burst / self.rate
            self._buckets = {k: v for k, v in self._buckets.items() if v[1] > full}
        return 0.0
