"""What a failed Discord send means for the delivery job: retry later, or stop sending to that chat."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any, Awaitable, Callable

import aiohttp
import discord

from bot.notifiers.base import SENT, OutgoingAlert, SendOutcome, failed, retry
from bot.notifiers.discord.render import AlertMessage, alert_message

log = logging.getLogger(__name__)
ARCHIVED_THREAD = 50083  # Discord's error code for a send to a thread the bot cannot unarchive
MISSING_PERMISSIONS = 50013  # the bot sees the channel but may not send there, or not embeds, or not files


def outcome_of(exc: Exception, where: str, webhook: bool = False) -> SendOutcome:
    """Map a discord.py error to what the delivery job should do: retry later, or stop for good."""
    if isinstance(exc, discord.RateLimited):
        return retry(f"{where}: rate limited for {exc.retry_after:.0f} s", exc.retry_after)
    if isinstance(exc, discord.Forbidden) and exc.code == MISSING_PERMISSIONS:
        # A channel setting a server admin can change back, not a channel gone: the subscription stays.
        return failed(f"{where}: 403 Missing Permissions: the bot may not post here (Send Messages, Embed Links); "
                      "once a server admin allows it, the next alerts arrive")
    if isinstance(exc, (discord.Forbidden, discord.NotFound)):
        # Missing Access, Unknown Channel, Unknown Webhook: this chat will not take messages again.
        return failed(f"{where}: {exc.status} {exc.text or exc}", chat_gone=True)
    if isinstance(exc, discord.HTTPException):
        status = exc.status
        if exc.code == ARCHIVED_THREAD:
            return failed(f"{where}: the thread is archived or locked", chat_gone=True)
        if status == 401 and webhook:  # a bot's 401 is its token, fixable; a webhook's is the chat itself
            return failed(f"{where}: 401 invalid webhook token", chat_gone=True)
        if status == 429:
            after = exc.response.headers.get("Retry-After") if exc.response is not None else None
            return retry(f"{where}: rate limited (429)", float(after) if after else None)
        if status >= 500 or status in (401, 408):
            return retry(f"{where}: Discord answered {status}")
        return failed(f"{where}: Discord refused the message: {status} {exc.text[:200]}")
    if isinstance(exc, asyncio.TimeoutError):
        return retry(f"{where}: no answer in time (a long rate limit, or Discord is slow)")
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return retry(f"{where}: network error: {type(exc).__name__}: {exc}")
    return retry(f"{where}: {type(exc).__name__}: {exc}")


async def post_alert(
    alert: OutgoingAlert, post: Callable[[AlertMessage], Awaitable[Any]], where: str, webhook: bool = False
) -> SendOutcome:
    """Post an alert with `post` and say what came of it; a chart Discord finds too large is dropped, not the alert."""
    message = alert_message(alert)
    try:
        await post(message)
    except discord.HTTPException as exc:
        if alert.chart_png and (exc.status == 413 or exc.code == MISSING_PERMISSIONS):
            why = "as too large" if exc.status == 413 else "(Missing Permissions: may the bot attach files here?)"
            log.warning("%s: chart refused %s; sending the alert without it", where, why)
            return await post_alert(dataclasses.replace(alert, chart_png=None), post, where, webhook)
        return outcome_of(exc, where, webhook)
    except Exception as exc:  # every failure becomes an outcome; the delivery job records it
        return outcome_of(exc, where, webhook)
    return SENT
