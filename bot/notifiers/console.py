"""The console notifier: alerts printed to standard output, the default when no chat is configured."""

from __future__ import annotations

import sys
from typing import TextIO

from pydantic import BaseModel, ConfigDict

from bot.notifiers.base import SENT, ChatTarget, OutgoingAlert, SendOutcome, failed, held

CONSOLE_CHAT = ChatTarget("stdout")


class ConsoleSettings(BaseModel):
    """Settings of the console channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True


class ConsoleNotifier:
    """Print each alert, separated by a blank line."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.closed = False  # the reader went away (`riskon replay | head`): nothing printed from now on

    async def start(self, listen: bool = True) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Nothing to release."""

    async def send(self, chat: ChatTarget, alert: OutgoingAlert) -> SendOutcome:
        """Write the alert text to the stream."""
        stream = self.stream or sys.stdout
        try:
            stream.write(alert.text.rstrip() + "\n\n")
            stream.flush()
        except (BrokenPipeError, ValueError) as exc:  # the reader is gone or the stream closed: not the alert's fault
            if not self.closed:
                import logging  # here, not at the top: check-config loads this module and no logging

                logging.getLogger(__name__).info("console output is closed (%s): alerts wait in the outbox", exc)
            self.closed = True
            return held(f"console output is closed ({exc})")
        except OSError as exc:
            return failed(f"console write failed: {exc}")
        return SENT
