"""The Notifier protocol: what every chat adapter offers, and what a send can come to."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from alerts.events import AlertEvent


@dataclass(frozen=True)
class ChatTarget:
    """Where a message goes: a chat (or channel) and, for forum topics and threads, the thread."""

    chat_id: str
    thread_id: str = ""


@dataclass(frozen=True)
class OutgoingAlert:
    """One message for one chat: the events it reports (one or several), its plain text, an optional chart."""

    events: tuple[AlertEvent, ...]
    text: str
    chart_png: bytes | None = None
    # Each event's own text as recorded, when the message groups several (a service may show them apart).
    texts: tuple[str, ...] = ()


@dataclass(frozen=True)
class SendOutcome:
    """What happened to one send: sent, retry (after `retry_after` seconds if known), failed for good, or held."""

    # held: the message never left because the channel's own output is gone (a console whose reader closed the
    # pipe); the alert goes back to the outbox as it was, no attempt counted.
    status: Literal["sent", "retry", "failed", "held"]
    retry_after: float | None = None
    error: str = ""
    # True when the chat itself is gone or blocked us: its subscription should stop.
    chat_gone: bool = False


SENT = SendOutcome("sent")
# A service's "retry after" beyond a day is a broken answer, not a wait to honour: taken as said, one 429 with
# retry_after 10^11 parked an alert until the year 5195 (and the chat's replies with it).
MAX_RETRY_AFTER_SECONDS = 86_400.0


def bounded_retry_after(after: float | None) -> float | None:
    """Return a service's retry-after in seconds within 0 and a day; None when it gave none or no number."""
    if after is None or math.isnan(after):
        return None
    return min(max(after, 0.0), MAX_RETRY_AFTER_SECONDS)


def retry(error: str, after: float | None = None) -> SendOutcome:
    """Build a retry outcome, its retry-after bounded to a day."""
    return SendOutcome("retry", bounded_retry_after(after), error)


def held(error: str) -> SendOutcome:
    """Build the outcome of a message that never left: its alert waits in the outbox as it was."""
    return SendOutcome("held", None, error)


def failed(error: str, chat_gone: bool = False) -> SendOutcome:
    """Build a permanent-failure outcome."""
    return SendOutcome("failed", None, error, chat_gone)


@runtime_checkable
class Notifier(Protocol):
    """A chat service riskon delivers alerts to."""

    name: str  # the channel name stored with subscriptions: "console", "telegram", "discord", "discord_webhook"

    async def start(self, listen: bool = True) -> None:
        """Connect; with `listen`, also answer chat commands (a one-off send, like send-test, must not)."""

    async def stop(self) -> None:
        """Disconnect and release every resource."""

    async def send(self, chat: ChatTarget, alert: OutgoingAlert) -> SendOutcome:
        """Send one alert message to one chat; never raise for a service error, return the outcome."""
        ...
