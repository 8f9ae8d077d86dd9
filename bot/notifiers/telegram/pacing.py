"""Telegram's flood limits kept before Telegram has to say so: a python-telegram-bot rate limiter.

Telegram allows 30 messages in any one second per bot, one a second per chat and 20 a minute per group,
counted when each message reaches it. A token bucket lets a burst through on top of its rate (44 messages in
the first second); this pacer keeps sliding windows instead, from the first message on.

The bot's window: a message goes once the one 30 before it reached Telegram more than a second ago. When that was
is known only within bounds: after it left, before its answer came. Counting from the answer is safe however slow
the way, but charges the way back and Telegram's own work once every second (a 100 ms round trip costs a tenth of
the rate). Every message pays at least the fastest recent round trip for those, less a safety margin (15 ms): that
much comes off each answer. So a message answered as fast as the fastest counts from when it left plus the margin;
one held up on its way in (a big upload, a congested link, a stalled process) is charged every millisecond it was
slower; until 30 round trips of the last ten seconds are known, messages count from their answers, and an
unanswered one holds the pace until its answer or its timeout: till then it may arrive yet. Where round trips are
within the margin (a server nearby, the fake in the tests) each message counts from its answer, so no window there
can hold 31. The even spacing keeps to its schedule, not to each message's lateness, so a loop woken late once
does not slow every message after it.
A chat's second and a group's minute count from the answers: each chat gets one message of a fan-out, so those
round trips cost the fan-out nothing.

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

from bot.notifiers.base import bounded_retry_after

SAFETY_MARGIN_SECONDS = 0.015  # how much more slowly one message may reach Telegram than the one 30 after it
ROUND_TRIPS_SECONDS = 10.0  # the fastest round trip is taken over the messages that left in the last ten seconds
ROUND_TRIPS_NEEDED = 30  # ... once there are at least this many of them


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
        # (when a message left, its round trip), each faster than the ones before it: the first is the fastest.
        self._round_trips: deque[tuple[float, float]] = deque()
        self._recent_lefts: deque[float] = deque()  # when the round trips of the last ten seconds left
        self._next_slot = float("-inf")  # the even spacing's next moment, kept on schedule, not on lateness
        self._turns = asyncio.Lock()  # the bot's turns are handed out in order
        self._chat_next: dict[str, float] = {}
        self._group_answers: dict[str, deque[float]] = {}
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self.waited_seconds = 0.0  # total pacing wait, for figures
        self.held_up = 0  # messages counted from their whole answer (held up, or too few to compare), for figures
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
                hold = retry_after_seconds(exc)
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
        # Unanswered, it may reach Telegram yet: wait for its answer, or the error that closed its connection.
        await sent.answer.wait()
        round_trip = sent.answered_at - sent.left
        fastest = self._note_round_trip(sent.left, round_trip)
        if fastest == float("inf") or round_trip > fastest + self.margin:  # perhaps held up on its way in
            self.held_up += 1
        if fastest == float("inf"):  # too few recent round trips to tell what they all pay
            return sent.answered_at
        # Every answer has Telegram's work and the way back in it: as much as the fastest round trip, less the
        # margin, comes off (never more than this one's own).
        return sent.answered_at - max(0.0, min(fastest, round_trip) - self.margin)

    def _note_round_trip(self, left: float, round_trip: float) -> float:
        """Note a message's round trip; return the fastest of the ten seconds before it (inf with too few)."""
        # A path that was faster or slower a while ago says nothing of this one, nor do a few round trips (the
        # first may be a chart's upload): after a pause, messages count from their answers until enough are in.
        while self._round_trips and self._round_trips[0][0] < left - ROUND_TRIPS_SECONDS:
            self._round_trips.popleft()
        while self._recent_lefts and self._recent_lefts[0] < left - ROUND_TRIPS_SECONDS:
            self._recent_lefts.popleft()
        enough = len(self._recent_lefts) >= ROUND_TRIPS_NEEDED
        fastest = self._round_trips[0][1] if enough else float("inf")
        while self._round_trips and self._round_trips[-1][1] >= round_trip:
            self._round_trips.pop()  # never the fastest while this one, newer and faster, is kept
        self._round_trips.append((left, round_trip))
        self._recent_lefts.append(left)
        return fastest

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


def retry_after_seconds(exc: RetryAfter) -> float:
    """Return a 429's retry_after in seconds, at most a day (PTB 22 warns it will become a timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    seconds = value.total_seconds() if hasattr(value, "total_seconds") else float(value)
    return bounded_retry_after(seconds) or 0.0
