"""Telegram's flood limits kept before Telegram has to say so: a python-telegram-bot rate limiter.

Telegram allows 30 messages in any one second per bot, one a second per chat and 20 a minute per group,
counted when each message reaches it. A token bucket lets a burst through on top of its rate (44 messages in
the first second); this pacer counts sliding windows from the answers instead: a message goes only once the
one sent a window's count before it has been answered a full window ago. A message reaches Telegram's counter
before its answer leaves it, so no window there can hold more than the limit, however slow the way is.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Awaitable, Callable, Coroutine

from telegram.ext import BaseRateLimiter


class _Sent:
    """One message on its way: answered once its call has returned (or failed)."""

    __slots__ = ("answered", "at")

    def __init__(self) -> None:
        self.answered = asyncio.Event()
        self.at = 0.0


class TelegramPacer(BaseRateLimiter[int]):
    """Pace every request that names a chat: the chat's spacing, a group's minute, then the bot's second."""

    def __init__(self, per_second: float = 30.0, chat_interval: float = 1.0, group_per_minute: float = 20.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.clock, self.sleep = clock, sleep
        self.chat_interval = chat_interval
        self.group_limit = max(1, int(group_per_minute))
        # A whole number per window: "29.5 a second" is 59 in two seconds, so never 30 in one.
        self.limit, self.window = (int(per_second), 1.0) if per_second >= 1 else (1, 1.0 / per_second)
        self.gap = self.window / self.limit  # spread evenly: a burst would queue at the far end and bunch up
        self._recent: deque[_Sent] = deque(maxlen=self.limit)
        self._last_start = float("-inf")
        self._turns = asyncio.Lock()  # the bot's turns are handed out in order
        self._chat_next: dict[str, float] = {}
        self._group_answers: dict[str, deque[float]] = {}
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self.waited_seconds = 0.0  # total pacing wait, for figures

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        """Wait for the message's turn (its chat, its group, the bot), make the call, and note when it answered."""
        if data.get("chat_id") is None:  # getUpdates, getMe, setMyCommands: not messages
            return await callback(*args, **kwargs)
        chat = str(data["chat_id"])
        lock = self._chat_locks.get(chat)
        if lock is None:
            lock = self._chat_locks[chat] = asyncio.Lock()
        async with lock:  # one chat's messages go one at a time, in order
            group = self._group_answers.setdefault(chat, deque(maxlen=self.group_limit)) if _is_group(chat) else None
            ready = self._chat_next.get(chat, 0.0)
            if group is not None and len(group) == self.group_limit:
                ready = max(ready, group[0] + 60.0)
            await self._sleep_until(ready)
            sent = await self._take_turn()
            try:
                return await callback(*args, **kwargs)
            finally:
                sent.at = self.clock()
                sent.answered.set()
                self._chat_next[chat] = sent.at + self.chat_interval
                if group is not None:
                    group.append(sent.at)
        if len(self._chat_locks) > 10_000:
            self._forget_idle()

    async def _take_turn(self) -> _Sent:
        """Wait until the bot may send one more message, and count it as on its way."""
        async with self._turns:
            ready = self._last_start + self.gap
            if len(self._recent) == self.limit:
                oldest = self._recent[0]
                await oldest.answered.wait()
                ready = max(ready, oldest.at + self.window)
            await self._sleep_until(ready)
            self._last_start = self.clock()
            sent = _Sent()
            self._recent.append(sent)
            return sent

    async def _sleep_until(self, moment: float) -> None:
        delay = moment - self.clock()
        if delay > 0:
            self.waited_seconds += delay
            await self.sleep(delay)

    def _forget_idle(self) -> None:
        """Forget chats with nothing waiting whose limits no longer hold anything back."""
        now = self.clock()
        for chat in [c for c, lock in self._chat_locks.items() if not lock.locked()]:
            answers = self._group_answers.get(chat)
            if self._chat_next.get(chat, 0.0) <= now and (not answers or answers[-1] + 60.0 <= now):
                self._chat_locks.pop(chat, None)
                self._chat_next.pop(chat, None)
                self._group_answers.pop(chat, None)


def _is_group(chat: str) -> bool:
    """Say whether a chat id is a group's or channel's (negative, or @channelname), not a person's."""
    return chat.startswith("-") or chat.startswith("@")
