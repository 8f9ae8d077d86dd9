"""Chat commands, written once: parse the arguments, read or change state through the Store, return a Reply.

Telegram and Discord render the same replies. An adapter builds a `CommandContext` for the chat and the
user, calls `dispatch` with the running bot (anything satisfying `bot.seams.CommandRuntime`), and sends
`Reply.text` (plain text; the adapter escapes it) and `Reply.image_png`.

The rooms: `specs` (what the commands are), `dispatch` (checks, then the handler), `handlers` (one short
function per command), `status` (the /status and /health views).
"""

from bot.commands.dispatch import answer_text, dispatch, is_admin
from bot.commands.specs import (
    COMMANDS,
    SPECS,
    Argument,
    CommandContext,
    CommandRateLimit,
    CommandSpec,
    Reply,
    UsageError,
    place,
)

__all__ = ["COMMANDS", "SPECS", "Argument", "CommandContext", "CommandRateLimit", "CommandSpec", "Reply", "UsageError",
           "answer_text", "dispatch", "is_admin", "place"]
