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


def outcome_of(exc: Exception, where: str, webhook: bool = False) -> SendOutcome:
    """Map a discord.py error to what the delivery job should do: retry later, or stop for good."""
    if isinstance(exc, discord.RateLimited):
        return retry(f"{where}: rate limited for {exc.retry_after:.0f} s", exc.retry_after)
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
        if exc.status == 413 and alert.chart_png:
            log.warning("%s: chart refused as too large; sending the alert without it", where)
            return await post_alert(dataclasses.replace(alert, chart_png=None), post, where, webhook)
        return outcome_of(exc, where, webhook)
    except Exception as exc:  # every failure becomes an outcome; the delivery job records it
        return outcome_of(exc, where, webhook)
    return SENT
