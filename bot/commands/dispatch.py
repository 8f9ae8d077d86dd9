"""Run one chat command: pace the user, check the name, the arguments and the user's rights, then the handler."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace

from bot.commands.handlers import HANDLERS, is_admin
from bot.commands.specs import MAX_ARG_LENGTH, MAX_ARGS, SPECS, WHERE_RIGHTS, CommandContext, Reply, UsageError
from bot.seams import CommandRuntime
from storage.base import STORE_ERRORS

log = logging.getLogger(__name__)

__all__ = ["answer_text", "dispatch", "is_admin"]
TEXT_HINT = "I answer commands only: send /help for the list."


async def dispatch(runtime: CommandRuntime, ctx: CommandContext, name: str, args: Sequence[str]) -> Reply:
    """Run one command for one user in one chat; never raise, always answer."""
    limit = runtime.command_limit
    wait = limit.wait_needed(ctx)
    if wait > 0:
        return Reply(f"Slow down: at most {limit.rate * 60:g} commands a minute each. Try again in {math.ceil(wait)} s.",
                     private=True)
    name = name.lstrip("/").split("@", 1)[0].lower()
    spec = SPECS.get(name)
    if spec is None or ctx.channel not in spec.platforms:
        return Reply(f"Unknown command /{name[:32]}. Send /help for the list.", private=True)
    usage = spec.usage_on(ctx.channel)
    if len(args) > MAX_ARGS or any(len(arg) > MAX_ARG_LENGTH for arg in args):
        return Reply(f"Too many or too long arguments.\nUsage: {usage}", private=True)
    if spec.admin_only and not is_admin(runtime, ctx):
        return Reply(f"/{name} is for riskon's admins only.", private=True)
    if spec.changes_subscriptions and not ctx.is_private:
        try:
            allowed = await ctx.may_manage()
        except Exception:  # the chat service could not say: refuse, never guess in favour
            log.warning("could not check whether user %s may manage chat %s", ctx.user_id, ctx.chat_id, exc_info=True)
            return Reply("Could not check your rights here right now; try again in a minute.", private=True)
        if not allowed:
            where = WHERE_RIGHTS.get(ctx.channel, "here")
            return Reply(f"Only {ctx.managers} can use /{name} {where}. Everyone can use /status.", private=True)
    try:
        reply = await HANDLERS[name](runtime, ctx, list(args))
    except UsageError as exc:
        return Reply(f"{exc}\nUsage: {usage}", private=True)
    except STORE_ERRORS as exc:  # a database locked by another process, or full: expected, not a bug
        log.warning("/%s in %s chat %s could not be saved: %s: %s", name, ctx.channel, ctx.chat_id,
                    type(exc).__name__, exc)
        return Reply(f"/{name} could not be saved: riskon's database is busy or full right now. Nothing changed; "
                     "try again in a minute.", private=True)
    except Exception:
        log.exception("/%s failed in %s chat %s", name, ctx.channel, ctx.chat_id)
        return Reply(f"/{name} failed on riskon's side; the error is logged.", private=True)
    return replace(reply, private=True) if spec.confirms_privately else reply


def answer_text(ctx: CommandContext, text: str) -> Reply | None:
    """Answer a message that is not a command: a pointer to /help in a private chat, nothing in a group."""
    if not ctx.is_private or not text.strip():
        return None
    return Reply(TEXT_HINT)
