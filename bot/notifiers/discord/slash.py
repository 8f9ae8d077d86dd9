"""Slash commands: riskon's chat-agnostic commands (bot/commands/) as Discord application commands."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import re
from typing import Any, Callable, Coroutine

import discord
from discord import app_commands

from bot.commands import SPECS, CommandContext, CommandSpec, Reply, dispatch
from bot.notifiers.discord.render import CHART_NAME, NO_MENTIONS, reply_chunks
from bot.notifiers.discord.settings import DiscordSettings
from bot.seams import NotifierRuntime
from storage.base import STORE_ERRORS

log = logging.getLogger(__name__)
CHANNEL = "discord"
DURATIONS = ("30m", "1h", "6h", "12h", "1d", "3d", "1w")


def context_of(interaction: discord.Interaction, settings: DiscordSettings) -> CommandContext:
    """Say where a command was typed: a channel, a thread of it (its own subscription), or a DM."""
    channel = interaction.channel
    chat_id, thread_id = str(interaction.channel_id), ""
    if isinstance(channel, discord.Thread) and channel.parent_id:
        chat_id, thread_id = str(channel.parent_id), str(channel.id)

    async def may_manage() -> bool:
        return member_may_manage(interaction, settings)

    managers = "members with Manage Channels" + "".join(f" or the {role} role" for role in settings.manager_roles)
    return CommandContext(CHANNEL, chat_id, thread_id, str(interaction.user.id),
                          is_private=interaction.guild_id is None, may_manage=may_manage, managers=managers)


def member_may_manage(interaction: discord.Interaction, settings: DiscordSettings) -> bool:
    """Say whether the member may change this channel's subscriptions: Manage Channels, or a manager role."""
    permissions = interaction.permissions  # computed by Discord for this member in this channel
    if permissions.manage_channels or permissions.administrator:
        return True
    member = interaction.user
    wanted = {name.casefold() for name in settings.manager_roles}
    # Roles resolve from the server's cached role list; an unknown role never grants anything.
    return isinstance(member, discord.Member) and any(role.name.casefold() in wanted for role in member.roles)


def _subscribed(runtime: NotifierRuntime, ctx: CommandContext) -> bool:
    subscription = runtime.store.subscription(ctx.channel, ctx.chat_id, ctx.thread_id)
    return subscription is not None and subscription.active


def missing_permissions_note(interaction: discord.Interaction) -> str:
    """Warn, on /subscribe, when the bot lacks a permission its alerts need in this channel; else say nothing."""
    if interaction.guild_id is None:
        return ""
    granted = interaction.app_permissions  # the bot's own permissions here, as Discord computed them
    send = "send_messages_in_threads" if isinstance(interaction.channel, discord.Thread) else "send_messages"
    needed = {send: "Send Messages" + (" in Threads" if send != "send_messages" else ""),
              "embed_links": "Embed Links", "attach_files": "Attach Files"}
    missing = [label for flag, label in needed.items() if not getattr(granted, flag)]
    if not missing:
        return ""
    return (f"\n⚠️ riskon lacks {', '.join(missing)} here: alerts to this channel will fail "
            "until a server admin grants them.")


def words(*values: str | None) -> list[str]:
    """Turn optional option values into command arguments (a value may hold several names)."""
    return [part for value in values if value for part in re.split(r"[\s,]+", str(value).strip()) if part]


async def run_command(interaction: discord.Interaction, runtime: NotifierRuntime, settings: DiscordSettings, name: str,
                      args: list[str]) -> None:
    """Run one command through the shared command layer and answer the interaction with its reply."""
    ctx = context_of(interaction, settings)
    task = asyncio.ensure_future(dispatch(runtime, ctx, name, args))
    # Discord wants an answer within 3 s; a slower command first says "thinking", then edits in its reply.
    done: set[Any] = set()
    if settings.answer_within_seconds > 0:
        done, _ = await asyncio.wait({task}, timeout=settings.answer_within_seconds)
    try:
        if not done:
            await interaction.response.defer(thinking=True, ephemeral=SPECS[name].confirms_privately)
        reply = await task
        if name == "subscribe" and _subscribed(runtime, ctx):
            reply = dataclasses.replace(reply, text=reply.text + missing_permissions_note(interaction))
        await answer(interaction, reply)
    except discord.HTTPException as exc:  # the interaction expired or Discord refused: nothing more to do
        log.warning("discord: could not answer /%s in channel %s: %s", name, interaction.channel_id, exc)


async def answer(interaction: discord.Interaction, reply: Reply) -> None:
    """Send a Reply as one or more messages, the image attached to the first; a private one only its sender sees."""
    chunks = reply_chunks(reply.text)
    for position, chunk in enumerate(chunks):
        extra: dict[str, Any] = {"ephemeral": reply.private}
        if position == 0 and reply.image_png:
            extra["file"] = discord.File(io.BytesIO(reply.image_png), CHART_NAME)
        if position == 0 and not interaction.response.is_done():
            await interaction.response.send_message(chunk, allowed_mentions=NO_MENTIONS, **extra)
        else:
            await interaction.followup.send(chunk, allowed_mentions=NO_MENTIONS, **extra)


def _choices(names: list[str], current: str) -> list[app_commands.Choice[str]]:
    typed = current.strip().casefold()
    matches = [n for n in names if typed in n.casefold()] if typed else names
    return [app_commands.Choice(name=n[:100], value=n[:100]) for n in matches[:25]]


def build_tree(client: discord.Client, runtime: NotifierRuntime, settings: DiscordSettings) -> app_commands.CommandTree:
    """Build the command tree: one slash command per chat command, with autocomplete for rules and symbols."""
    tree = app_commands.CommandTree(client)

    async def symbols(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return _choices([s.id for s in runtime.config.symbols], current)

    async def rules_and_symbols(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        config = runtime.config
        return _choices([r.id for r in config.rules] + [s.id for s in config.symbols], current)

    async def durations(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return _choices(list(DURATIONS), current)

    async def run(interaction: discord.Interaction, name: str, *values: str | None) -> None:
        await run_command(interaction, runtime, settings, name, words(*values))

    def describe(name: str) -> str:
        return SPECS[name].description[:100]

    def without_options(name: str) -> Callable[[discord.Interaction], Coroutine[Any, Any, None]]:
        async def callback(interaction: discord.Interaction) -> None:
            await run(interaction, name)
        return callback

    for name in ("help", "list", "rules", "unmute", "pause", "resume", "reload", "health"):
        tree.add_command(app_commands.Command(name=name, description=describe(name), callback=without_options(name)))

    @tree.command(name="status", description=describe("status"))
    @app_commands.describe(symbol="a symbol, e.g. ^RUT (empty: every symbol)")
    @app_commands.autocomplete(symbol=symbols)
    async def status(interaction: discord.Interaction, symbol: str | None = None) -> None:
        await run(interaction, "status", symbol)

    @tree.command(name="chart", description=describe("chart"))
    @app_commands.describe(symbol="the symbol to draw")
    @app_commands.autocomplete(symbol=symbols)
    async def chart(interaction: discord.Interaction, symbol: str) -> None:
        await run(interaction, "chart", symbol)

    @tree.command(name="subscribe", description=describe("subscribe"))
    @app_commands.describe(what="rules and/or symbols, e.g. BTC or smallcap_ath (empty: every alert)")
    @app_commands.autocomplete(what=rules_and_symbols)
    async def subscribe(interaction: discord.Interaction, what: str | None = None) -> None:
        await run(interaction, "subscribe", what)

    @tree.command(name="unsubscribe", description=describe("unsubscribe"))
    @app_commands.describe(what="rules and/or symbols to drop (empty: stop every alert)")
    @app_commands.autocomplete(what=rules_and_symbols)
    async def unsubscribe(interaction: discord.Interaction, what: str | None = None) -> None:
        await run(interaction, "unsubscribe", what)

    @tree.command(name="mute", description=describe("mute"))
    @app_commands.describe(duration="how long, e.g. 30m, 6h, 2d", what="one rule or symbol (empty: everything)")
    @app_commands.autocomplete(duration=durations, what=rules_and_symbols)
    async def mute(interaction: discord.Interaction, duration: str, what: str | None = None) -> None:
        await run(interaction, "mute", duration, what)

    @tree.command(name="alerts", description=describe("alerts"))
    @app_commands.describe(count="how many (1-50, default 5)")
    async def alerts(interaction: discord.Interaction, count: app_commands.Range[int, 1, 50] | None = None) -> None:
        await run(interaction, "alerts", str(count) if count is not None else None)

    @tree.command(name="fragility", description=describe("fragility"))
    @app_commands.describe(fund="one fund, e.g. IWM (empty: every configured fund)")
    async def fragility(interaction: discord.Interaction, fund: str | None = None) -> None:
        await run(interaction, "fragility", fund)

    for command in tree.get_commands():
        command.default_permissions = default_permissions(SPECS[command.name], settings)

    async def on_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await answer_tree_error(runtime, interaction, error)

    tree.on_error = on_error  # type: ignore[method-assign]  # discord.py's documented override point
    return tree


def synced_commands_key(application_id: int | None, guild_id: int | None) -> str:
    """Name the setting holding the hash of the commands last synced to a server (None: globally)."""
    return f"discord.commands.{application_id}.{guild_id if guild_id is not None else 'global'}"


async def answer_tree_error(runtime: NotifierRuntime, interaction: discord.Interaction,
                            error: app_commands.AppCommandError) -> None:
    """Answer a command riskon could not run, instead of leaving Discord to say "the application did not respond"."""
    name = interaction.command.name if interaction.command else str(dict(interaction.data or {}).get("name", "?"))
    if isinstance(error, (app_commands.CommandNotFound, app_commands.CommandSignatureMismatch)):
        # Discord holds an older (or another instance's) copy of the commands, though the hash of the last sync
        # says it is current: forget that hash, so that the next start syncs.
        for guild_id in {None, interaction.guild_id}:
            with contextlib.suppress(*STORE_ERRORS):
                runtime.store.set_setting(synced_commands_key(interaction.application_id, guild_id), "")
        log.warning("discord: /%s in channel %s does not match riskon's commands (%s); they will be synced at the "
                    "next start", name, interaction.channel_id, type(error).__name__)
        text = f"/{name} is out of date on Discord's side. Send /help for riskon's commands."
    else:
        log.error("discord: /%s in channel %s failed", name, interaction.channel_id, exc_info=error)
        text = f"/{name} failed on riskon's side; the error is logged."
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException as exc:
        log.warning("discord: could not answer /%s in channel %s: %s", name, interaction.channel_id, exc)


def default_permissions(spec: CommandSpec, settings: DiscordSettings) -> discord.Permissions | None:
    """Return the permission a member needs to see a command (Discord hides it from the others), or None."""
    if spec.admin_only:
        # riskon's admins are listed by user id; Discord can only hide by permission: Manage Server is closest.
        return discord.Permissions(manage_guild=True)
    if spec.changes_subscriptions and not settings.manager_roles:
        # With manager roles configured, members without the permission may still use these: keep them visible.
        return discord.Permissions(manage_channels=True)
    return None

