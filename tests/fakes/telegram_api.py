"""A fake Telegram Bot API server (aiohttp on 127.0.0.1) that python-telegram-bot 22 runs against unmodified.

It answers what PTB calls (getMe, deleteWebhook, getUpdates with long polling, sendMessage, sendPhoto,
setMyCommands, getChatMember, getChat, setWebhook, ...), enforces Telegram's flood limits with real 429
answers carrying `parameters.retry_after`, and lets a test inject faults per chat: 5xx, a hang past the
client's timeout, a 429, a blocked user (403) or a vanished chat (400). Tests post updates as users and
read back what the bot sent.
"""

from __future__ import annotations

import asyncio
import html.parser
import json
import math
import re
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web

from tests.fakes.server import ANY, FakeServer, Fault

BOT_ID = 123456
TOKEN = f"{BOT_ID}:TEST-token_x9Yq"
BOT_USERNAME = "riskon_test_bot"
SEND_METHODS = {"sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "copyMessage", "forwardMessage"}
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "tg-spoiler",
                "span", "blockquote", "tg-emoji"}
ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


@dataclass
class FakeChat:
    """A chat the fake knows: private (id = the user's id), group, supergroup (maybe a forum) or channel."""

    id: int
    type: str = "private"
    title: str = ""
    is_forum: bool = False
    admins: set[int] = field(default_factory=set)
    topics: set[int] = field(default_factory=set)
    blocked: bool = False  # a private chat whose user blocked the bot, or a group that kicked it
    gone: bool = False  # deleted: "chat not found"
    migrated_to: int | None = None  # a group upgraded to a supergroup with this id
    no_photos: bool = False  # a group whose members (the bot among them) may not send photos
    no_messages: bool = False  # a group where the bot may not post at all (its right to send was taken)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private":
            data["first_name"] = f"user{self.id}"
        else:
            data["title"] = self.title or f"chat {self.id}"
        if self.is_forum:
            data["is_forum"] = True
        return data


@dataclass(frozen=True)
class SentMessage:
    """One message the bot got through to a chat."""

    chat_id: int
    thread_id: int | None
    text: str
    parse_mode: str | None
    photo: bytes | None = None
    at: float = 0.0


class Window:
    """Telegram's counter: at most `limit` messages in any `seconds`-long window (a sliding window, no burst)."""

    def __init__(self, limit: float, seconds: float) -> None:
        self.limit, self.seconds = max(1, round(limit)), seconds
        self.times: deque[float] = deque()

    def wait_needed(self, now: float) -> float:
        """Return 0 when one more message fits in the window ending now, else seconds until one does."""
        while self.times and self.times[0] <= now - self.seconds:
            self.times.popleft()
        return 0.0 if len(self.times) < self.limit else self.times[0] + self.seconds - now

    def take(self, now: float) -> None:
        self.times.append(now)


class _HtmlChecker(html.parser.HTMLParser):
    """Check HTML the way Telegram's parser does: known tags only, balanced, and count the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.error: str | None = None
        self.visible = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in ALLOWED_TAGS and not self.error:
            self.error = f'Unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if (not self.stack or self.stack[-1] != tag) and not self.error:
            self.error = f'Unmatched end tag "{tag}"'
        elif self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.visible += len(data.encode("utf-16-le")) // 2


def check_html(text: str) -> tuple[str | None, int]:
    """Return (the parse error Telegram would give or None, the visible length in UTF-16 units)."""
    for index, char in enumerate(text):
        if char == "&" and not ENTITY.match(text, index):
            return f"Can't parse entities: unsupported entity at byte offset {len(text[:index].encode())}", 0
        if char == "<" and not re.match(r"</?[a-z-]+(\s[^<>]*)?>", text[index:]):
            return f"Can't parse entities: unexpected < at byte offset {len(text[:index].encode())}", 0
    checker = _HtmlChecker()
    checker.feed(text)
    checker.close()
    if checker.error:
        return f"Can't parse entities: {checker.error}", 0
    if checker.stack:
        return f'Can\'t parse entities: can\'t find end tag corresponding to start tag "{checker.stack[-1]}"', 0
    return None, checker.visible


class FakeTelegram(FakeServer):
    """The fake Bot API server. Start it, point PTB's base_url at `base_url`, then post updates and read `sent`."""

    name = "fake Telegram"
    max_request_bytes = 60 * 1024 * 1024

    def __init__(
        self,
        token: str = TOKEN,
        overall_per_second: float = 30.0,
        chat_per_second: float = 1.0,
        chat_burst: float = 1.0,
        group_per_minute: float = 20.0,
        hang_seconds: float = 3.0,
        max_poll_seconds: float = 5.0,
    ) -> None:
        super().__init__()
        self.token = token
        self.overall_per_second = overall_per_second
        self.chat_per_second = chat_per_second
        self.chat_burst = chat_burst
        self.group_per_minute = group_per_minute
        self.hang_seconds = hang_seconds  # how long an injected "timeout" keeps the client waiting
        self.max_poll_seconds = max_poll_seconds  # cap on getUpdates' wait, so tests stop quickly
        self.chats: dict[int, FakeChat] = {}
        self.sent: list[SentMessage] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.call_counts: Counter = Counter()
        self.too_many_requests = 0  # 429 answers given for flood limits (not injected ones)
        self.limited_by: Counter = Counter()  # which limit each of those 429s enforced: bot, chat, group
        self.commands: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}  # file_id -> photo bytes, as Telegram keeps uploads
        self.uploads = 0  # photos that arrived as bytes (multipart), not as a file_id
        self.webhook: dict[str, Any] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._next_message_id = 1
        self._new_update = asyncio.Event()
        self._overall = Window(overall_per_second, 1.0)
        self._chat_windows: dict[int, Window] = {}
        self._group_windows: dict[int, Window] = {}
        self._http: ClientSession | None = None

    # --- lifecycle ------------------------------------------------------------------------------
    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/bot{token}/{method}", self._handle)

    async def closing(self) -> None:
        """Wake any long poll and close the webhook client."""
        self._new_update.set()
        if self._http is not None:
            await self._http.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # --- the world --------------------------------------------------------------------------------
    def add_private_chat(self, user_id: int) -> FakeChat:
        """Add a user's private chat with the bot."""
        return self.chats.setdefault(user_id, FakeChat(user_id, "private"))

    def add_group(self, chat_id: int, admins: set[int] = frozenset(), forum: bool = False,
                  topics: set[int] = frozenset()) -> FakeChat:
        """Add a supergroup (negative id), optionally a forum with topics."""
        chat = FakeChat(chat_id, "supergroup", f"group {chat_id}", forum, set(admins), set(topics))
        self.chats[chat_id] = chat
        return chat

    def inject(self, fault: str, chat_id: int | None = None, times: int = 1) -> None:
        """Make the next `times` sends to a chat (or any chat) fail: '500', '502', 'timeout', '429' ('429:40': retry
        after 40 s rather than 1).

        'unreadable' and 'unreadable-result' deliver the message, then answer HTTP 200 with a body the client
        cannot read: cut-off JSON, or a result that is not a Message.
        """
        self.faults.add(ANY if chat_id is None else chat_id, Fault(fault, times))

    def post_command(self, chat_id: int, user_id: int, text: str, thread_id: int | None = None) -> int:
        """Queue a message from a user in a chat (a command when it starts with /); return its update id."""
        chat = self.chats.get(chat_id) or self.add_private_chat(chat_id)
        message: dict[str, Any] = {
            "message_id": self._take_message_id(), "date": int(time.time()), "chat": chat.as_json(),
            "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}, "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = chat.is_forum
        update = {"update_id": self._next_update_id, "message": message}
        self._next_update_id += 1
        self._updates.append(update)
        self._new_update.set()
        if self.webhook.get("url"):
            asyncio.get_running_loop().create_task(self._push(update))
        return update["update_id"]

    def messages_to(self, chat_id: int, thread_id: int | None = None) -> list[SentMessage]:
        """Return what the bot got through to a chat (and topic, when given)."""
        return [m for m in self.sent if m.chat_id == chat_id and (thread_id is None or m.thread_id == thread_id)]

    # --- HTTP ------------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await _params(request)
        self.calls.append((method, {k: v for k, v in params.items() if not isinstance(v, bytes)}))
        self.call_counts[method] += 1
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        return await handler(params)

    async def _api_getMe(self, params: dict[str, Any]) -> web.Response:
        return _ok({"id": BOT_ID, "is_bot": True, "first_name": "riskon", "username": BOT_USERNAME,
                    "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False})

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook = {}
        return _ok(True)

    async def _api_setWebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook = {"url": params.get("url", ""), "secret_token": params.get("secret_token")}
        return _ok(True)

    async def _api_getWebhookInfo(self, params: dict[str, Any]) -> web.Response:
        return _ok({"url": self.webhook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0})

    async def _api_setMyCommands(self, params: dict[str, Any]) -> web.Response:
        commands = _json(params.get("commands"))
        if not isinstance(commands, list) or not all(re.fullmatch(r"[a-z0-9_]{1,32}", c.get("command", ""))
                                                      for c in commands):
            return _error(400, "Bad Request: BOT_COMMAND_INVALID")
        self.commands = commands
        return _ok(True)

    async def _api_getMyCommands(self, params: dict[str, Any]) -> web.Response:
        return _ok(self.commands)

    async def _api_getUpdates(self, params: dict[str, Any]) -> web.Response:
        if self.webhook.get("url"):
            return _error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        wait = min(float(params.get("timeout") or 0), self.max_poll_seconds)
        # Confirm (drop) every update below the offset, as Telegram does.
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + wait
        while not self._updates and time.monotonic() < deadline:
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        return _ok(self._updates[:limit])

    async def _api_getChat(self, params: dict[str, Any]) -> web.Response:
        chat = self.chats.get(_int(params.get("chat_id")))
        if chat is None or chat.gone:
            return _error(400, "Bad Request: chat not found")
        return _ok({**chat.as_json(), "accent_color_id": 0, "max_reaction_count": 11,
                    "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False,
                                            "unique_gifts": False, "premium_subscription": False}})

    async def _api_getChatMember(self, params: dict[str, Any]) -> web.Response:
        chat = self.chats.get(_int(params.get("chat_id")))
        user_id = _int(params.get("user_id"))
        if chat is None or chat.gone:
            return _error(400, "Bad Request: chat not found")
        user = {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}
        if chat.type == "private":
            return _ok({"status": "member", "user": user})
        if user_id in chat.admins:
            rights = dict.fromkeys(
                ("can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
                 "can_restrict_members", "can_promote_members", "can_change_info", "can_invite_users",
                 "can_post_stories", "can_edit_stories", "can_delete_stories"), False)
            return _ok({"status": "administrator", "user": user, **rights, "can_manage_chat": True})
        return _ok({"status": "member", "user": user})

    async def _api_sendMessage(self, params: dict[str, Any]) -> web.Response:
        return await self._deliver(params, str(params.get("text") or ""), None)

    async def _api_sendPhoto(self, params: dict[str, Any]) -> web.Response:
        photo = params.get("photo")
        if isinstance(photo, str) and photo:  # a file_id of a photo sent before: Telegram reuses the upload
            if photo not in self.files:
                return _error(400, "Bad Request: wrong file identifier/HTTP URL specified")
            photo = self.files[photo]
        elif not isinstance(photo, bytes) or not photo:
            return _error(400, "Bad Request: there is no photo in the request")
        else:
            self.uploads += 1
        return await self._deliver(params, str(params.get("caption") or ""), photo)

    async def _deliver(self, params: dict[str, Any], text: str, photo: bytes | None) -> web.Response:
        chat_id = _int(params.get("chat_id"))
        fault = self._next_fault(chat_id)
        if fault == "timeout":
            await asyncio.sleep(self.hang_seconds)  # the client gives up first; nothing is delivered
            return _error(504, "Gateway Timeout")
        if fault in ("500", "502"):
            if fault == "502":  # Telegram's front end answers HTML, not JSON
                return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>",
                                    content_type="text/html")
            return _error(500, "Internal Server Error")
        if fault is not None and fault.split(":")[0] == "429":  # "429" or "429:SECONDS"
            after = int(fault.split(":")[1]) if ":" in fault else 1
            return _error(429, f"Too Many Requests: retry after {after}", {"retry_after": after})
        chat = self.chats.get(chat_id)
        if chat is None or chat.gone:
            return _error(400, "Bad Request: chat not found")
        if chat.migrated_to is not None:
            return _error(400, "Bad Request: group chat was upgraded to a supergroup chat",
                          {"migrate_to_chat_id": chat.migrated_to})
        if chat.blocked:
            reason = "bot was blocked by the user" if chat.type == "private" else "bot was kicked from the supergroup chat"
            return _error(403, f"Forbidden: {reason}")
        if chat.no_messages:  # a group whose admins took the bot's right to post
            return _error(400, "Bad Request: not enough rights to send text messages to the chat")
        if photo is not None and chat.no_photos:
            return _error(400, "Bad Request: not enough rights to send photos to the chat")
        thread_id = _int(params.get("message_thread_id")) if params.get("message_thread_id") else None
        if chat.is_forum and thread_id is not None and thread_id not in chat.topics:
            return _error(400, "Bad Request: message thread not found")
        limit = 1024 if photo is not None else 4096
        parse_mode = params.get("parse_mode")
        if parse_mode == "HTML":
            problem, visible = check_html(text)
            if problem:
                return _error(400, f"Bad Request: {problem}")
        else:
            visible = len(text.encode("utf-16-le")) // 2
        if photo is None and not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if visible > limit:
            return _error(400, "Bad Request: message caption is too long" if photo else "Bad Request: message is too long")
        wait = self._flood_wait(chat)
        if wait > 0:
            self.too_many_requests += 1
            retry_after = max(1, math.ceil(wait))
            return _error(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})
        self.sent.append(SentMessage(chat_id, thread_id, text, parse_mode, photo, time.monotonic()))
        if fault == "unreadable":  # delivered, but the answer breaks off: a proxy cut it, say
            return web.Response(status=200, text='{"ok":true,"result":{"message_id":', content_type="application/json")
        if fault == "unreadable-result":  # delivered, but the result is not a Message (no chat, no date)
            return _ok({"message_id": self._take_message_id()})
        message: dict[str, Any] = {"message_id": self._take_message_id(), "date": int(time.time()),
                                   "chat": chat.as_json(),
                                   "from": {"id": BOT_ID, "is_bot": True, "first_name": "riskon"}}
        if photo is not None:
            file_id = next((k for k, v in self.files.items() if v == photo), f"AgACphoto{len(self.files) + 1}")
            self.files[file_id] = photo
            message["photo"] = [{"file_id": file_id, "file_unique_id": f"u{file_id}",
                                 "width": 800, "height": 500, "file_size": len(photo)}]
            if text:
                message["caption"] = text
        else:
            message["text"] = text
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = chat.is_forum
        return _ok(message)

    def _next_fault(self, chat_id: int) -> str | None:
        fault = self.faults.take(chat_id)
        return None if fault is None else fault.kind

    def _flood_wait(self, chat: FakeChat) -> float:
        """Return 0 and count the message when every limit allows it, else the seconds to wait.

        Telegram's limits as documented, counted when the request arrives: `overall_per_second` messages in any
        one second, `chat_burst` per chat in any `chat_burst / chat_per_second` seconds (one a second by
        default), `group_per_minute` per group or channel in any minute.
        """
        now = time.monotonic()
        windows = {"bot": self._overall}
        windows["chat"] = self._chat_windows.setdefault(
            chat.id, Window(self.chat_burst, self.chat_burst / self.chat_per_second))
        if chat.type != "private":
            windows["group"] = self._group_windows.setdefault(chat.id, Window(self.group_per_minute, 60.0))
        waits = {name: window.wait_needed(now) for name, window in windows.items()}
        wait = max(waits.values())
        if wait == 0:
            for window in windows.values():
                window.take(now)
        else:
            self.limited_by.update(name for name, needed in waits.items() if needed > 0)
        return wait

    def most_in_any_window(self, seconds: float = 1.0, chat_id: int | None = None) -> int:
        """Return the most messages that arrived within any `seconds`-long window (of one chat, when given)."""
        times = sorted(m.at for m in self.sent if chat_id is None or m.chat_id == chat_id)
        most, first = 0, 0
        for last, moment in enumerate(times):
            while times[first] <= moment - seconds:
                first += 1
            most = max(most, last - first + 1)
        return most

    def _take_message_id(self) -> int:
        self._next_message_id += 1
        return self._next_message_id

    async def _push(self, update: dict[str, Any]) -> None:
        """Deliver an update to the bot's webhook, as Telegram does once setWebhook is called."""
        if self._http is None:
            self._http = ClientSession()
        headers = {}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        async with self._http.post(self.webhook["url"], json=update, headers=headers) as response:
            await response.read()


async def _params(request: web.Request) -> dict[str, Any]:
    """Read a Bot API call's parameters from the query, a form, multipart or JSON."""
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            params.update(await request.json())
        else:
            form = await request.post()
            for key, value in form.items():
                params[key] = value.file.read() if isinstance(value, web.FileField) else value
    return params


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def riskon_config(fake: FakeTelegram, tmp_path: Any, *, telegram: dict[str, Any] | None = None,
                  schedule: dict[str, Any] | None = None, asset_class: str | None = None) -> str:
    """Return a riskon config.yaml with one ^RUT new-high rule and a Telegram channel on this fake."""
    symbol: dict[str, Any] = {"id": "^RUT", "feed": "replay"}
    if asset_class is not None:
        symbol["asset_class"] = asset_class
    channel = {"token": "${TELEGRAM_BOT_TOKEN}", "base_url": fake.base_url, "poll_timeout_seconds": 1,
               "register_commands": False, **(telegram or {})}
    return json.dumps({
        "feeds": {"replay": {"kind": "replay", "path": str(tmp_path)}},
        "symbols": [symbol],
        "rules": [{"id": "rut_ath", "kind": "new_ath", "symbols": ["^RUT"]}],
        **({"schedule": schedule} if schedule else {}),
        "channels": {"telegram": channel},
    })  # JSON is YAML, and needs no escaping of ^ or $
