"""The Telegram notifier: alerts to chats, groups and forum topics, and the chat commands, with python-telegram-bot.

The PTB Application runs inside riskon's own asyncio loop (initialize, start, start_polling; the reverse on
stop). Sends respect Telegram's flood limits before Telegram has to say so: the pacer (pacing.py) keeps the
whole bot, each group and each chat inside their sliding windows.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from urllib.parse import urlsplit

from telegram import BotCommand, LinkPreviewOptions, Update
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters
from telegram.request import HTTPXRequest

from alerts.errors import RiskonError
from bot.backoff import backoff_seconds
from bot.commands import COMMANDS, CommandContext, Reply, answer_text, dispatch
from bot.logs import RedactSecrets
from bot.notifiers.base import SENT, ChatTarget, OutgoingAlert, SendOutcome, failed, retry
from bot.notifiers.telegram.answers import StatusNotingRequest, answered_ok, noting_answers
from bot.notifiers.telegram.pacing import TelegramPacer, retry_after_seconds
from bot.notifiers.telegram.settings import TelegramSettings
from bot.notifiers.telegram.text import CAPTION_LIMIT, split_text, to_html, units
from bot.seams import NotifierRuntime

log = logging.getLogger(__name__)

# Errors that mean the chat (or topic) will never take a message again: stop its subscription.
CHAT_GONE = ("chat not found", "message thread not found", "bot was kicked", "bot is not a member", "topic_deleted",
             "user is deactivated")
# A group whose admins took the bot's right to post: a setting they can change back, so the subscription stays
# (as with Discord's 403 Missing Permissions). Media alone barred is handled where the chart is sent.
MAY_NOT_POST = ("have no rights to send", "not enough rights to send")


def may_not_post(error: str) -> bool:
    """Say whether a Bot API error means the bot may not post in the group at all (not only its media)."""
    lowered = error.lower()
    return "send photos" not in lowered and any(marker in lowered for marker in MAY_NOT_POST)


NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
CONTINUATION_BUDGET_SECONDS = 40.0  # below the delivery job's own send timeout
CONTINUATION_RETRY_SECONDS = (1.0, 10.0)  # the back-off of a follow-up part refused for a while: first pause, longest
LOGGERS_WITH_URLS = ("httpx", "telegram.Bot", "telegram.ext.ExtBot", "telegram.ext.Updater", "telegram.ext.Application")


class TelegramNotifier:
    """Send alerts to Telegram chats and answer chat commands there."""

    name = "telegram"

    def __init__(self, settings: TelegramSettings, runtime: NotifierRuntime) -> None:
        self.settings = settings
        self.runtime = runtime
        self._token = settings.token.get_secret_value()
        secrets = [self._token] + ([settings.webhook_secret.get_secret_value()] if settings.webhook_secret else [])
        self._redact = RedactSecrets(secrets)
        # httpx logs each request URL, and PTB its base URL, with the token in it: redact at the source,
        # whatever handlers the process has (riskon's own setup redacts again on its handler).
        for name in LOGGERS_WITH_URLS:
            logging.getLogger(name).addFilter(self._redact)
        self._started = False
        self._photo_ids: dict[bytes, str] = {}  # sha256 of a chart -> Telegram's file_id for it
        self._uploading: dict[bytes, asyncio.Future] = {}  # charts whose first upload is on its way
        self._sending = 0  # sends in flight: stop() lets them finish so their outcomes are recorded
        self._idle = asyncio.Event()
        self._idle.set()
        self._rng = random.Random()
        self.app = self._build_application()

    def _build_application(self) -> Application:
        s = self.settings
        timeout = s.request_timeout_seconds
        self.pacer = TelegramPacer(s.messages_per_second, s.chat_interval_seconds, s.group_messages_per_minute)
        return (
            Application.builder()
            .token(self._token)
            .base_url(s.base_url)
            .base_file_url(s.base_file_url)
            .rate_limiter(self.pacer)
            .request(StatusNotingRequest(connection_pool_size=64, connect_timeout=timeout, read_timeout=timeout,
                                         write_timeout=timeout, pool_timeout=timeout))
            .get_updates_request(HTTPXRequest(connect_timeout=timeout, read_timeout=s.poll_timeout_seconds + timeout))
            .concurrent_updates(16)
            .job_queue(None)  # riskon has its own scheduler
            .build()
        )

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self, listen: bool = True) -> None:
        """Log in (getMe); with `listen`, also publish the commands and start listening for them."""
        if not listen:
            # Sending only: polling here would take the updates a running bot is waiting for.
            try:
                await self.app.initialize()
            except (TelegramError, RuntimeError, OSError) as exc:
                raise RiskonError(f"Telegram did not start: {self._clean(exc)}") from None
            self._started = True
            return
        for spec in COMMANDS:
            self.app.add_handler(CommandHandler(
                spec.name, self._on_command, filters=filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST))
        # In a private chat an unknown command gets a pointer to /help; in groups it may be another bot's.
        self.app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.COMMAND & filters.ChatType.PRIVATE,
                                            self._on_command))
        # Plain text in a private chat gets a one-line pointer to /help instead of silence.
        self.app.add_handler(MessageHandler(
            filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE, self._on_text))
        self.app.add_error_handler(self._on_error)
        try:
            await self.app.initialize()
            if self.settings.register_commands:
                await self.app.bot.set_my_commands([BotCommand(c.name, c.description[:256]) for c in COMMANDS])
            await self.app.start()
            await self._listen()
        except (TelegramError, RuntimeError, OSError) as exc:
            raise RiskonError(f"Telegram did not start: {self._clean(exc)}") from None
        self._started = True
        log.info("telegram: logged in as @%s, listening by %s", self.app.bot.username, self.settings.mode)

    async def _listen(self) -> None:
        s, updater = self.settings, self.app.updater
        assert updater is not None  # Application.builder() builds one unless told not to
        allowed = [Update.MESSAGE, Update.CHANNEL_POST]
        if s.mode == "webhook":
            secret = s.webhook_secret.get_secret_value() if s.webhook_secret else None
            await updater.start_webhook(listen=s.webhook_listen, port=s.webhook_port,
                                        url_path=urlsplit(s.webhook_url or "").path.strip("/"),
                                        webhook_url=s.webhook_url, secret_token=secret, allowed_updates=allowed)
        else:
            await updater.start_polling(poll_interval=0.0, timeout=s.poll_timeout_seconds, allowed_updates=allowed,
                                        error_callback=self._polling_failed)

    def _polling_failed(self, exc: TelegramError) -> None:
        log.warning("telegram: polling for commands failed: %s", self._clean(exc))

    async def stop(self) -> None:
        """Stop listening, then stop and shut down the application."""
        self._started = False  # new sends now return "retry": they stay in the outbox for the next start
        try:
            # A message already on its way may have reached the chat: wait for its answer, so the delivery
            # job records it as sent instead of sending it again after a restart.
            await asyncio.wait_for(self._idle.wait(), self.settings.request_timeout_seconds + 5)
        except TimeoutError:
            log.warning("telegram: %d sends still unanswered at shutdown", self._sending)
        try:
            if self.app.updater is not None and self.app.updater.running:
                await self.app.updater.stop()
            if self.app.running:
                await self.app.stop()
            await self.app.shutdown()
        finally:
            for name in LOGGERS_WITH_URLS:
                logging.getLogger(name).removeFilter(self._redact)

    # --- alerts -----------------------------------------------------------------------------------
    async def send(self, chat: ChatTarget, alert: OutgoingAlert) -> SendOutcome:
        """Send one alert (split if long, then its chart); return sent, retry or failed, never raise."""
        if not self._started:
            return retry("telegram: not connected (stopped, or see the start-up error in the log)")
        self._sending += 1
        self._idle.clear()
        try:
            return await self._send_alert(chat, alert)
        finally:
            self._sending -= 1
            if self._sending == 0:
                self._idle.set()

    async def _send_alert(self, chat: ChatTarget, alert: OutgoingAlert) -> SendOutcome:
        pieces = [to_html(piece, bold_first_line=(i == 0)) for i, piece in enumerate(split_text(alert.text))]
        chart = alert.chart_png
        # A short alert with a chart is one message: the photo with the text as its caption.
        photo = chart if chart and len(pieces) == 1 and units(pieces[0]) <= CAPTION_LIMIT else None
        try:
            chat, chart_sent = await self._send_first(chat, pieces[0], photo)
        except TelegramError as exc:
            return self._outcome(exc)
        # The alert has reached the chat: from here on a retry of the whole alert would repeat it, so the
        # rest (more text, the chart) is retried here, within a bounded time.
        extras: list[tuple[str, bytes | None]] = [(p, None) for p in pieces[1:]]
        if chart and not chart_sent:
            extras.append(("", chart))
        deadline = time.monotonic() + CONTINUATION_BUDGET_SECONDS
        for text, photo in extras:
            problem = await self._send_continuation(chat, text, photo, deadline)
            if problem:
                log.warning("telegram chat %s: alert delivered, but a follow-up part was not: %s", chat.chat_id, problem)
                return SendOutcome("sent", error=problem)
        return SENT

    async def _send_first(self, chat: ChatTarget, text: str, photo: bytes | None) -> tuple[ChatTarget, bool]:
        """Send the alert's first message; follow a group's move to a supergroup; return the chat and chart sent."""
        try:
            await self._send_piece(chat, text, photo)
            return chat, photo is not None
        except ChatMigrated as exc:
            moved = self._follow_migration(chat, exc.new_chat_id)
            if moved is None:
                raise  # the supergroup's own subscription brings it this alert: not twice
            chat = moved
        except BadRequest as exc:
            # "not enough rights to send photos": a group that bars media bars only the chart, not the alert. A chat
            # gone, or one where the bot may not post at all, refuses the text too.
            if photo is None or self._outcome(exc).chat_gone or may_not_post(str(exc)):
                raise
            log.warning("telegram chat %s: chart refused (%s); sending the text alone", chat.chat_id, self._clean(exc))
            photo = None
        await self._send_piece(chat, text, photo)
        return chat, photo is not None

    def _follow_migration(self, chat: ChatTarget, new_chat_id: int) -> ChatTarget | None:
        """Move a group's subscription to the supergroup it became and send there; None where that has its own."""
        moved = ChatTarget(str(new_chat_id), chat.thread_id)
        own = self.runtime.store.subscription(self.name, moved.chat_id, chat.thread_id)
        # The supergroup's members subscribed there: their subscription and its filters stay, and the alert comes
        # to them through it (sent on from the old group too, it arrived twice).
        if own is not None and own.active:
            return None
        self.runtime.store.move_subscription(self.name, chat.chat_id, moved.chat_id, chat.thread_id,
                                             now=self.runtime.now(), reason=f"group became supergroup {new_chat_id}")
        log.info("telegram chat %s became supergroup %s; its subscription moved", chat.chat_id, new_chat_id)
        return moved

    async def _send_piece(self, chat: ChatTarget, text: str, photo: bytes | None = None) -> None:
        thread = int(chat.thread_id) if chat.thread_id else None
        with noting_answers() as statuses:
            try:
                if photo is not None:
                    await self._send_photo(chat.chat_id, thread, text, photo)
                else:
                    await self.app.bot.send_message(chat.chat_id, text, parse_mode=ParseMode.HTML,
                                                    message_thread_id=thread, link_preview_options=NO_PREVIEW)
            except Exception as exc:
                if not answered_ok(statuses):
                    raise
                # Telegram took the message (HTTP success): sending it again would show it twice.
                log.warning("telegram chat %s: message sent, but Telegram's answer could not be read (%s: %s); "
                            "counted as sent", chat.chat_id, type(exc).__name__, self._clean(exc)[:200])

    async def _send_photo(self, chat_id: str, thread: int | None, caption: str, photo: bytes) -> None:
        """Send a chart: the first chat gets the upload, the others Telegram's file_id for it."""
        key = hashlib.sha256(photo).digest()
        first = self._uploading.get(key)
        if key not in self._photo_ids and first is not None:
            await asyncio.wait({first})  # a fan-out starts many sends at once: let one upload go first
        file_id = self._photo_ids.get(key)
        uploading = file_id is None and key not in self._uploading
        if uploading:
            self._uploading[key] = asyncio.get_running_loop().create_future()
        try:
            try:
                sent = await self.app.bot.send_photo(chat_id, file_id or photo, caption=caption or None,
                                                     parse_mode=ParseMode.HTML, message_thread_id=thread)
            except BadRequest as exc:
                if file_id is None or "file" not in str(exc).lower():
                    raise
                self._photo_ids.pop(key, None)  # Telegram forgot the upload: send the bytes again
                sent = await self.app.bot.send_photo(chat_id, photo, caption=caption or None,
                                                     parse_mode=ParseMode.HTML, message_thread_id=thread)
            if sent.photo and key not in self._photo_ids:
                self._photo_ids[key] = sent.photo[-1].file_id
                while len(self._photo_ids) > 256:  # keep the newest charts' ids
                    self._photo_ids.pop(next(iter(self._photo_ids)))
        finally:
            if uploading:
                self._uploading.pop(key).set_result(None)

    async def _send_continuation(self, chat: ChatTarget, text: str, photo: bytes | None, deadline: float) -> str:
        """Send a follow-up part, retrying rate limits and network errors until the deadline; return a problem."""
        refused = 0
        while True:
            try:
                await self._send_piece(chat, text, photo)
                return ""
            except TelegramError as exc:
                outcome = self._outcome(exc)
                if outcome.status == "failed":
                    return outcome.error
                refused += 1
                wait = outcome.retry_after or backoff_seconds(refused, *CONTINUATION_RETRY_SECONDS, self._rng)
                if time.monotonic() + wait > deadline:
                    return outcome.error
                await asyncio.sleep(wait)

    def _outcome(self, exc: TelegramError) -> SendOutcome:
        """Map a Bot API error to what the delivery job should do."""
        text = self._clean(exc)
        if isinstance(exc, RetryAfter):
            after = retry_after_seconds(exc)
            return retry(f"telegram: flood limit, retry after {after:g} s", after)
        if isinstance(exc, Forbidden):
            return failed(f"telegram: {text}", chat_gone=True)
        if isinstance(exc, ChatMigrated):
            return failed(f"telegram: group moved to supergroup {exc.new_chat_id}, which has its own subscription",
                          chat_gone=True)
        if isinstance(exc, BadRequest):
            if may_not_post(text):
                return failed(f"telegram: {text}: the bot may not post in this group; once a group admin allows it, "
                              "the next alerts arrive")
            return failed(f"telegram: {text}", chat_gone=any(marker in text.lower() for marker in CHAT_GONE))
        if isinstance(exc, InvalidToken):
            return retry("telegram: the bot token was rejected (revoked?)")
        # TimedOut, NetworkError (5xx, a bad-gateway page, a dropped connection) and anything new: try again later.
        return retry(f"telegram: {type(exc).__name__}: {text}")

    def _clean(self, exc: BaseException) -> str:
        """Return an error's text with the token removed."""
        return self._redact.redact(str(exc) or type(exc).__name__)

    # --- commands ---------------------------------------------------------------------------------
    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat, user = update.effective_message, update.effective_chat, update.effective_user
        if message is None or chat is None or not message.text:
            return
        name = message.text.split()[0][1:].split("@", 1)[0]
        thread = str(message.message_thread_id) if message.is_topic_message and message.message_thread_id else ""

        async def may_manage() -> bool:
            if chat.type == ChatType.CHANNEL or (message.sender_chat and message.sender_chat.id == chat.id):
                return True  # a channel post or an anonymous group admin
            if user is None:
                return False
            member = await context.bot.get_chat_member(chat.id, user.id)
            return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)

        ctx = CommandContext("telegram", str(chat.id), thread, str(user.id) if user else "",
                             chat.type == ChatType.PRIVATE, may_manage)
        reply = await dispatch(self.runtime, ctx, name, message.text.split()[1:])
        await self._answer(ChatTarget(str(chat.id), thread), reply)

    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat, user = update.effective_message, update.effective_chat, update.effective_user
        if message is None or chat is None or not message.text:
            return
        ctx = CommandContext("telegram", str(chat.id), "", str(user.id) if user else "", chat.type == ChatType.PRIVATE)
        if self.runtime.command_limit.wait_needed(ctx) > 0:
            return  # a flood of chatter gets no flood of hints
        reply = answer_text(ctx, message.text)
        if reply is not None:
            await self._answer(ChatTarget(str(chat.id)), reply)

    async def _answer(self, chat: ChatTarget, reply: Reply) -> None:
        """Send a command's reply; a failure is logged (redacted), never raised into PTB."""
        try:
            if reply.image_png is not None and units(to_html(reply.text)) <= CAPTION_LIMIT:
                await self._send_piece(chat, to_html(reply.text), reply.image_png)
                return
            for piece in split_text(reply.text):
                await self._send_piece(chat, to_html(piece))
            if reply.image_png is not None:
                await self._send_piece(chat, "", reply.image_png)
        except TelegramError as exc:
            log.warning("telegram chat %s: reply not sent: %s", chat.chat_id, self._clean(exc))

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log what a command's handling raised: a service error in a line, a bug with its (redacted) traceback."""
        error = context.error
        chat = update.effective_chat.id if isinstance(update, Update) and update.effective_chat else "?"
        if isinstance(error, TelegramError):
            log.warning("telegram chat %s: command not answered: %s", chat, self._clean(error))
        elif error is not None:
            log.error("telegram chat %s: command failed: %s", chat, self._clean(error),
                      exc_info=(type(error), error, error.__traceback__))

