"""Telegram's flood limits kept before Telegram has to say so: a python-telegram-bot rate limiter.

Telegram allows 30 messages in any one second per bot, one a second per chat and 20 a minute per group,
counted when each message reaches it. A token bucket lets a burst through on top of its rate (44 messages in
the first second); this pacer keeps sliding windows instead, from the first message on.

The bot's window: a message goes once the one 30 before it reached Telegram more than a second ago. When that
was is known only within bounds: after it left, before its answer came. Counting from the answer is safe
however slow the way, but loses a round trip every second (0.87 x 30 messages/s). So a message whose answer
came about as fast as the fastest recent one (within a safety margin) counts from when it left plus the margin:
it was not held up on its way in. One held up (a big upload, a congested link, a stalled process) counts
from its answer; one still unanswered a second after it left, from that moment. A chat's second and a group's minute count
from the answers: each chat gets one message of a fan-out, so those round trips cost the fan-out nothing.

A 429 says how long that request must wait, not which limit it met: its chat waits that long here (and the
delivery job retries it then); the rest of the bot keeps a pace its own window already keeps under 30.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections import deque
from typing import Any, Awaitable, Callable, Coroutine

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

SAFETY_MARGIN_SECONDS = 0.015  # how much longer than the fastest recent round trip still counts as not held up
ROUND_TRIPS_KEPT = 300  # the fastest round trip is taken over about the last ten seconds at full pace


class _Sent:
    """One message on its way: when it left, and when its answer (or error) came back."""

    __slots__ = ("answer", "answered_at", "left")

    def __init__(self, left: float) -> None:
        self.left = left
        self.answer = asyncio.Event()
        self.answered_at = float("inf")


class TelegramPacer(BaseRateLimiter[int]):
    """Pace every request that names a chat: the chat's spacing, a group's minute, then the bot's second."""

    def __init__(self, per_second: float = 30.0, chat_interval: float = 1.0, group_per_minute: float = 20.0,
                 margin: float = SAFETY_MARGIN_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.clock, self.sleep = clock, sleep
        self.chat_interval = chat_interval
        self.group_limit = max(1, int(group_per_minute))
        # A whole number per window: "29.5 a second" is 59 in two seconds, so never 30 in one.
        self.limit, self.window = (int(per_second), 1.0) if per_second >= 1 else (1, 1.0 / per_second)
        self.margin = margin
        self.gap = self.window / self.limit
        self._recent: deque[_Sent] = deque(maxlen=self.limit)  # the bot's last `limit` messages
        self._round_trips: deque[float] = deque(maxlen=ROUND_TRIPS_KEPT)
        self._next_slot = float("-inf")  # the even spacing's next moment, kept on schedule, not on lateness
        self._turns = asyncio.Lock()  # the bot's turns are handed out in order
        self._chat_next: dict[str, float] = {}
        self._group_answers: dict[str, deque[float]] = {}
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self.waited_seconds = 0.0  # total pacing wait, for figures
        self.held_up = 0  # messages counted from their answer, for figures
        self.too_many_requests = 0  # 429s Telegram answered all the same, for figures

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
            hold = 0.0
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                self.too_many_requests += 1
                hold = _seconds(exc)
                raise
            finally:
                sent.answered_at = answered = self.clock()
                sent.answer.set()
                self._chat_next[chat] = answered + max(self.chat_interval, hold)
                if group is not None:
                    group.append(answered)
        if len(self._chat_locks) > 10_000:
            self._forget_idle()

    async def _take_turn(self) -> _Sent:
        """Wait until the bot may send one more message, and count it as on its way."""
        async with self._turns:
            slot = max(self._next_slot, self.clock())  # evenly spaced: a burst would queue on the way and bunch up
            planned = slot
            if len(self._recent) == self.limit:
                planned = max(slot, await self._reached_telegram_by(self._recent[0]) + self.window)
            await self._sleep_until(planned)
            sent = _Sent(self.clock())
            self._recent.append(sent)
            # The spacing keeps to its schedule, not to this message's lateness: after one held up, the next ones
            # catch up at up to twice the pace, while the window above still counts 30 in any second.
            self._next_slot = max(slot + self.gap, planned + self.gap / 2)
            return sent

    async def _reached_telegram_by(self, sent: _Sent) -> float:
        """Return the latest moment a message can have reached Telegram, as far as its round trip tells."""
        if not sent.answer.is_set():
            await self._wait_for_answer(sent, sent.left + self.window)
        if sent.answered_at == float("inf"):  # unanswered a second on: count it from now
            self.held_up += 1
            return self.clock()
        round_trip = sent.answered_at - sent.left
        fastest = min(self._round_trips, default=0.0)  # the first message has nothing to compare with
        self._round_trips.append(round_trip)
        if round_trip <= fastest + self.margin:
            return min(sent.answered_at, sent.left + self.margin)
        self.held_up += 1
        return sent.answered_at

    async def _wait_for_answer(self, sent: _Sent, until: float) -> None:
        answer = asyncio.ensure_future(sent.answer.wait())
        timer = asyncio.ensure_future(self.sleep(max(0.0, until - self.clock())))
        try:
            await asyncio.wait({answer, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            answer.cancel()
            timer.cancel()

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


def _seconds(exc: RetryAfter) -> float:
    """Return a 429's retry_after in seconds (PTB 22 warns it will become a timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)
