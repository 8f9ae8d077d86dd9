"""Telling a message Telegram accepted from one it refused, even when python-telegram-bot cannot read the answer.

Telegram answers a send with HTTP 200 only once the message is in the chat. If the body of that answer is cut
off or not the Message PTB expects, PTB raises (a bare TelegramError, or a TypeError/KeyError from parsing),
and a caller that took that for a failure would send the message again. The request class below notes the
HTTP status of every answer for the send waiting on it (through a context variable, so concurrent sends never
see each other's), and `answered_ok` reads it back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from telegram.request import HTTPXRequest

_statuses: ContextVar[list[int] | None] = ContextVar("riskon_telegram_statuses", default=None)


class StatusNotingRequest(HTTPXRequest):
    """PTB's httpx request, noting each answer's HTTP status for the send that awaits it."""

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        """Make the request as HTTPXRequest does, and note the status it came back with."""
        code, payload = await super().do_request(*args, **kwargs)
        statuses = _statuses.get()
        if statuses is not None:
            statuses.append(code)
        return code, payload


@contextmanager
def noting_answers() -> Iterator[list[int]]:
    """Collect the HTTP statuses of the requests made inside the block (in this task)."""
    statuses: list[int] = []
    token = _statuses.set(statuses)
    try:
        yield statuses
    finally:
        _statuses.reset(token)


def answered_ok(statuses: list[int]) -> bool:
    """Say whether the last request answered with HTTP success (so Telegram took the message)."""
    return bool(statuses) and 200 <= statuses[-1] < 300
