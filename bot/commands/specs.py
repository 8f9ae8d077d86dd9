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


PLATFORMS = frozenset({"telegram", "discord"})
# How each chat service names the place a command was typed: (a private chat, a group or channel, a topic or thread).
PLACES = {"telegram": ("this chat", "this group", "this topic"), "discord": ("this DM", "this channel", "this thread")}
# Where a chat service's members and their rights live, for refusals.
WHERE_RIGHTS = {"telegram": "here", "discord": "in this server"}


@dataclass(frozen=True)
class Argument:
    """One argument of a command: its slash-command option name, and how a usage line shows its value."""

    option: str  # Discord's option name, e.g. "duration"
    shown: str  # the value in a usage line, e.g. "DURATION" or "RULE|SYMBOL"
    required: bool = False
    many: bool = False  # several values allowed (in one Discord option, separated by spaces or commas)


@dataclass(frozen=True)
class CommandSpec:
    """One chat command: its name, arguments, what it does, and who may run it."""

    name: str
    description: str
    arguments: tuple[Argument, ...] = ()
    admin_only: bool = False  # riskon's own admins (config `admins`), in any chat
    changes_subscriptions: bool = False  # private chat: its owner; group: the group's admins
    confirms_privately: bool = False  # the confirmation is for the one who typed it (Discord: ephemeral)
    platforms: frozenset[str] = PLATFORMS  # /start is Telegram's greeting; Discord has no such command

    def usage_on(self, platform: str) -> str:
        """Render the usage line as the platform shows it: positional on Telegram, named options on Discord."""
        parts = [f"/{self.name}"]
        for argument in self.arguments:
            value = argument.shown + (" ..." if argument.many else "")
            if platform == "discord":
                value = f"{argument.option}:{value}"
            parts.append(value if argument.required else f"[{value}]")
        return " ".join(parts)

    @property
    def usage(self) -> str:
        """Return the usage line as typed on Telegram."""
        return self.usage_on("telegram")


SYMBOL = Argument("symbol", "SYMBOL")
FILTERS = Argument("what", "RULE|SYMBOL", many=True)
COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("start", "Say hello and how to get alerts", platforms=frozenset({"telegram"})),
    CommandSpec("help", "List the commands"),
    CommandSpec("status", "Prices, all-time highs, levels, flows, data freshness, bot health", (SYMBOL,)),
    CommandSpec("subscribe", "Get alerts here (all, or only these rules/symbols)", (FILTERS,),
                changes_subscriptions=True, confirms_privately=True),
    CommandSpec("unsubscribe", "Stop alerts here (all, or these rules/symbols)",
                (Argument("what", "RULE|SYMBOL ...|all"),), changes_subscriptions=True),
    CommandSpec("list", "Show the subscription and mutes here"),
    CommandSpec("alerts", "Show the N most recent alerts (default 5)", (Argument("count", "N"),)),
    CommandSpec("rules", "Say what is watched, in words"),
    CommandSpec("mute", "Silence alerts here for a while, e.g. /mute 6h BTC",
                (Argument("duration", "DURATION", required=True), Argument("what", "RULE|SYMBOL")),
                changes_subscriptions=True, confirms_privately=True),
    CommandSpec("unmute", "Lift every mute here", changes_subscriptions=True),
    CommandSpec("chart", "Draw a chart of a symbol", (Argument("symbol", "SYMBOL", required=True),)),
    CommandSpec("pause", "Stop sending alerts everywhere (admin)", admin_only=True),
    CommandSpec("resume", "Send alerts again (admin)", admin_only=True),
    CommandSpec("reload", "Re-read config.yaml, keeping state (admin)", admin_only=True),
    CommandSpec("health", "Feeds, outbox and uptime in detail (admin)", admin_only=True),
    CommandSpec("fragility", "Take the fragility snapshot now, out of schedule (admin)", (Argument("fund", "FUND"),),
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
    """What a command answers: plain text, an optional PNG image, and whether only its sender should see it."""

    text: str
    image_png: bytes | None = None
    # Refusals, usage errors and some confirmations concern the sender alone: Discord shows them to them only.
    private: bool = False


def place(ctx: CommandContext) -> str:
    """Name where a command was typed, in the chat service's words: this chat/group/topic, this DM/channel/thread."""
    private, shared, thread = PLACES.get(ctx.channel, PLACES["telegram"])
    if ctx.is_private:
        return private
    return thread if ctx.thread_id else shared


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
