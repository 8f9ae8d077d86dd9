"""A fake Discord: REST API, gateway WebSocket and webhooks on 127.0.0.1, speaking Discord's wire protocol.

discord.py reaches it through its two URL settings (Route.BASE and DiscordWebSocket.DEFAULT_GATEWAY), which
riskon's Discord settings expose as `api_base` and `gateway`. The fake answers as Discord does, errors and
rate limits included: 429 with `retry_after` in the JSON body plus the X-RateLimit-* headers, 403 Missing
Access, 404 Unknown Channel / Unknown Webhook, 400 Invalid Form Body for over-long messages and embeds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_limits import Bucket, error_answer, json_answer, validate_message
from tests.fakes.server import FakeServer, Fault

API = "/api/v10"
MANAGE_CHANNELS = 1 << 4
# What an ordinary member may do in a channel: view, send, read history, use application commands.
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 31)
# What riskon's invite URL grants the bot: view, send, embed links, attach files, read history, send in threads.
BOT_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 38)
TEXT_CHANNEL, PUBLIC_THREAD = 0, 11
_snowflakes = itertools.count(1_180_000_000_000_000_000)


def snowflake() -> str:
    """Return a fresh Discord id (19 digits, like the real ones)."""
    return str(next(_snowflakes))


@dataclass
class Posted:
    """One message the fake received: where it went, its JSON payload and its attached files."""

    channel_id: str
    payload: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    webhook_id: str = ""
    thread_id: str = ""

    @property
    def embeds(self) -> list[dict[str, Any]]:
        """Return the message's embeds."""
        return self.payload.get("embeds") or []

    @property
    def content(self) -> str:
        """Return the message's text."""
        return self.payload.get("content") or ""


class FakeDiscord(FakeServer):
    """Discord's REST API, gateway and webhooks for one bot, with guilds, members and failures set up by tests."""

    name = "fake Discord"
    max_request_bytes = 30 * 1024 * 1024

    def __init__(
        self,
        token: str = "fake-bot-token",
        *,
        heartbeat_interval_ms: int = 41250,
        channel_limit: int = 5,
        channel_window: float = 5.0,
        attachment_limit: int = 10 * 1024 * 1024,
        global_per_second: int = 50,
    ) -> None:
        super().__init__()
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.channel_limit, self.channel_window = channel_limit, channel_window
        self.attachment_limit = attachment_limit
        self.global_per_second = global_per_second
        self._recent: collections.deque[float] = collections.deque()  # times of the bot's recent requests
        self.global_429s = 0
        self.application_id = snowflake()
        self.bot_user = {"id": self.application_id, "username": "riskon", "discriminator": "0", "global_name": None,
                         "avatar": None, "bot": True, "flags": 0}
        self.guilds: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}  # every channel and thread, by id
        self.webhooks: dict[str, dict[str, Any]] = {}  # webhook id -> {token, channel_id}
        self.messages: list[Posted] = []  # channel messages and webhook executions, in arrival order
        self.responses: dict[str, list[dict[str, Any]]] = {}  # interaction id -> callbacks and edits
        self.synced_commands: dict[str, list[dict[str, Any]]] = {}  # "global" or guild id -> commands
        self.requests: list[tuple[str, str]] = []
        self.heartbeats_answered = 0
        self.identified = asyncio.Event()
        self.resumed = asyncio.Event()
        self.gone: dict[str, int] = {}  # channel id -> 403 or 404 for every send
        self.denied: dict[str, str] = {}  # channel id -> the permission the bot lacks there: "attach" or "send"
        self.buckets: dict[str, Bucket] = {}
        self.slow: dict[str, float] = {}  # channel id -> seconds the answer is held after the message is accepted
        self._nonces: dict[str, dict[str, Any]] = {}  # enforced nonce -> the message it created
        self.last_interaction_id = ""
        self._stopping = asyncio.Event()
        self._sockets: list[web.WebSocketResponse] = []
        self._sequence = itertools.count(1)
        self._interactions: dict[str, dict[str, Any]] = {}  # token -> interaction
        self._answered: dict[str, asyncio.Event] = {}
        self._arrived = asyncio.Condition()

    # --- set-up by tests ------------------------------------------------------------------------------
    def add_guild(self, name: str = "Traders", roles: tuple[str, ...] = ("alert-managers",)) -> dict[str, Any]:
        """Create a guild with an @everyone role, the named roles and one text channel `#alerts`."""
        guild_id = snowflake()
        role_list = [{"id": guild_id, "name": "@everyone", "permissions": str(MEMBER_PERMISSIONS), "position": 0,
                      "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}]
        for position, role in enumerate(roles, 1):
            role_list.append({"id": snowflake(), "name": role, "permissions": "0", "position": position, "color": 0,
                              "hoist": False, "managed": False, "mentionable": False, "flags": 0})
        guild = {"id": guild_id, "name": name, "owner_id": snowflake(), "roles": role_list, "channels": [],
                 "threads": [], "members": [], "member_count": 2, "features": [], "emojis": [], "stickers": [],
                 "large": False, "unavailable": False, "joined_at": "2026-01-01T00:00:00+00:00"}
        self.guilds[guild_id] = guild
        self.add_channel(guild, "alerts")
        return guild

    def add_channel(self, guild: dict[str, Any], name: str, parent_id: str | None = None) -> dict[str, Any]:
        """Add a text channel, or a public thread when `parent_id` names its channel."""
        channel = {"id": snowflake(), "guild_id": guild["id"], "name": name, "position": len(guild["channels"]),
                   "permission_overwrites": [], "nsfw": False, "topic": None, "last_message_id": None,
                   "rate_limit_per_user": 0, "parent_id": parent_id,
                   "type": PUBLIC_THREAD if parent_id else TEXT_CHANNEL}
        if parent_id:
            channel.update(owner_id=snowflake(), message_count=0, member_count=1, flags=0,
                           thread_metadata={"archived": False, "auto_archive_duration": 1440, "locked": False,
                                            "archive_timestamp": "2026-01-01T00:00:00+00:00"})
            guild["threads"].append(channel)
        else:
            guild["channels"].append(channel)
        self.channels[channel["id"]] = channel
        return channel

    def add_dm(self) -> dict[str, Any]:
        """Open a DM channel between the bot and a new user; the user's id is the channel's `user_id`."""
        user_id = snowflake()
        channel = {"id": snowflake(), "type": 1, "last_message_id": None, "user_id": user_id,
                   "recipients": [{"id": user_id, "username": "dm-trader", "discriminator": "0", "avatar": None}]}
        self.channels[channel["id"]] = channel
        return channel

    def channel(self, guild: dict[str, Any], name: str) -> dict[str, Any]:
        """Return a guild's channel or thread by name."""
        return next(c for c in guild["channels"] + guild["threads"] if c["name"] == name)

    def role_id(self, guild: dict[str, Any], name: str) -> str:
        """Return the id of a guild's role by name."""
        return next(r["id"] for r in guild["roles"] if r["name"] == name)

    def add_webhook(self, channel_id: str) -> str:
        """Create a webhook on a channel; return its discord.com-shaped URL."""
        webhook_id, token = snowflake(), "w" * 30 + snowflake()[:10] + "T" * 28
        self.webhooks[webhook_id] = {"token": token, "channel_id": channel_id}
        return f"https://discord.com/api/webhooks/{webhook_id}/{token}"

    def delete_webhook(self, url: str) -> None:
        """Delete a webhook: its URL answers 404 Unknown Webhook from now on."""
        self.webhooks.pop(url.rstrip("/").split("/")[-2], None)

    def rate_limit_next(self, target_id: str, *retry_after: float) -> None:
        """Answer the next sends to a channel or webhook with 429 and these retry_after values, in order."""
        for seconds in retry_after:
            self.faults.add(target_id, Fault("429", status=429, retry_after=seconds))

    def make_gone(self, channel_id: str, status: int = 404) -> None:
        """Answer every send to a channel with 403 Missing Access, 404 Unknown Channel or 400 Thread is archived."""
        self.gone[channel_id] = status

    def deny(self, channel_id: str, permission: str) -> None:
        """Take a permission from the bot in a channel ("attach", "send"; "" gives it back): 403 code 50013."""
        self.denied[channel_id] = permission

    def hold_answers(self, channel_id: str, seconds: float) -> None:
        """Accept messages to a channel at once but answer only after `seconds` (a crash can fall in between)."""
        self.slow[channel_id] = seconds

    def sent_to(self, channel_id: str) -> list[Posted]:
        """Return the messages a channel (or thread) received."""
        return [m for m in self.messages if m.channel_id == channel_id or m.thread_id == channel_id]

    # --- lifecycle ------------------------------------------------------------------------------------
    @property
    def api_base(self) -> str:
        """Return the REST base URL for discord.py's Route.BASE."""
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def gateway(self) -> str:
        """Return the gateway URL for DiscordWebSocket.DEFAULT_GATEWAY."""
        return f"ws://127.0.0.1:{self.port}/"

    def add_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/", self._gateway)
        r.add_get(API + "/users/@me", self._me)
        r.add_get(API + "/oauth2/applications/@me", self._application)
        r.add_get(API + "/gateway", self._gateway_url)
        r.add_get(API + "/gateway/bot", self._gateway_url)
        r.add_put(API + "/applications/{app}/commands", self._sync)
        r.add_put(API + "/applications/{app}/guilds/{guild}/commands", self._sync)
        r.add_post(API + "/interactions/{id}/{token}/callback", self._callback)
        r.add_post(API + "/channels/{channel}/messages", self._channel_message)
        r.add_get(API + "/channels/{channel}", self._get_channel)
        r.add_post(API + "/webhooks/{id}/{token}", self._webhook)
        r.add_patch(API + "/webhooks/{id}/{token}/messages/{message}", self._edit_original)

    async def closing(self) -> None:
        """Release held answers and close every gateway connection."""
        self._stopping.set()
        for socket in list(self._sockets):
            await socket.close()

    # --- what tests do as Discord users ----------------------------------------------------------------
    async def interact(
        self,
        guild: dict[str, Any] | None,
        channel: dict[str, Any],
        command: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: str | None = None,
        permissions: int = MEMBER_PERMISSIONS,
        roles: tuple[str, ...] = (),
        autocomplete: str | None = None,
        bot_permissions: int = BOT_PERMISSIONS,
        timeout: float = 20.0,  # a bound on success, never waited out by a passing test
    ) -> dict[str, Any]:
        """Run a slash command as a member (or ask for autocomplete of option `autocomplete`); return the reply."""
        interaction_id, token = snowflake(), "interaction-token-" + snowflake()
        option_list = []
        for name, value in (options or {}).items():
            kind = 4 if isinstance(value, int) and not isinstance(value, bool) else 3
            item: dict[str, Any] = {"name": name, "type": kind, "value": value}
            if name == autocomplete:
                item["focused"] = True
            option_list.append(item)
        user = {"id": user_id or snowflake(), "username": "trader", "discriminator": "0", "global_name": "Trader",
                "avatar": None}
        interaction = {
            "id": interaction_id, "application_id": self.application_id, "token": token, "version": 1,
            "type": 4 if autocomplete else 2, "channel_id": channel["id"],
            "channel": {k: channel[k] for k in ("id", "type", "name", "guild_id", "parent_id", "position",
                                                 "permission_overwrites", "nsfw", "recipients") if k in channel},
            "data": {"id": snowflake(), "name": command, "type": 1, "options": option_list},
            "app_permissions": str(bot_permissions), "locale": "en-US", "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if guild is None:  # a DM: a user, no member, no server
            interaction.update(user={**user, "id": user_id or channel["user_id"]}, context=1,
                               authorizing_integration_owners={"1": user_id or channel["user_id"]})
        else:
            interaction.update(guild_id=guild["id"], guild_locale="en-US", context=0,
                               authorizing_integration_owners={"0": guild["id"]},
                               member={"user": user, "roles": [self.role_id(guild, name) for name in roles],
                                       "nick": None, "joined_at": "2026-01-01T00:00:00+00:00", "deaf": False,
                                       "mute": False, "flags": 0, "permissions": str(permissions)})
        self._interactions[token] = interaction
        self._answered[interaction_id] = asyncio.Event()
        self.last_interaction_id = interaction_id
        await self.dispatch("INTERACTION_CREATE", interaction)
        await asyncio.wait_for(self._answered[interaction_id].wait(), timeout)
        return self.responses[interaction_id][-1]

    async def wait_for_replies(self, interaction_id: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Wait until an interaction has `count` answers (a reply and its follow-ups), not counting deferrals."""
        def answers() -> list[dict[str, Any]]:
            return [r for r in self.responses.get(interaction_id, []) if r.get("type") != 5]
        await self.wait_until(lambda: len(answers()) >= count, timeout)
        return answers()

    @staticmethod
    def text_of(answer: dict[str, Any]) -> str:
        """Return the text of an interaction answer (a reply, an edit or a follow-up)."""
        return (answer.get("data") or {}).get("content") or ""

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close every gateway connection as Discord does in an outage (4000: unknown error, resumable)."""
        self.identified.clear()
        self.resumed = asyncio.Event()
        for socket in list(self._sockets):
            await socket.close(code=code, message=b"Unknown error")

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway dispatch to every connected client."""
        if not self._sockets:
            raise RuntimeError("no gateway client is connected")
        for socket in list(self._sockets):
            await socket.send_str(json.dumps({"op": 0, "t": event, "s": next(self._sequence), "d": data}))

    async def wait_for_messages(self, count: int, timeout: float = 20.0) -> list[Posted]:
        """Wait until at least `count` messages have arrived; return them all."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.messages) >= count), timeout)
        return list(self.messages)

    # --- gateway --------------------------------------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        try:
            await socket.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}))
            async for frame in socket:
                if frame.type != WSMsgType.TEXT:
                    break
                message = json.loads(frame.data)
                op = message.get("op")
                if op == 1:
                    self.heartbeats_answered += 1
                    await socket.send_str(json.dumps({"op": 11}))
                elif op == 2:
                    if message["d"].get("token") != self.token:
                        await socket.close(code=4004, message=b"Authentication failed.")
                        break
                    await self._ready(socket)
                elif op == 6:
                    await socket.send_str(json.dumps({"op": 0, "t": "RESUMED", "s": next(self._sequence), "d": {}}))
                    self.resumed.set()
        finally:
            self._sockets.remove(socket)
        return socket

    async def _ready(self, socket: web.WebSocketResponse) -> None:
        ready = {"v": 10, "user": self.bot_user, "session_id": "fake-session", "shard": [0, 1],
                 "resume_gateway_url": self.gateway, "guilds": [{"id": g, "unavailable": True} for g in self.guilds],
                 "application": {"id": self.application_id, "flags": 0}}
        await socket.send_str(json.dumps({"op": 0, "t": "READY", "s": next(self._sequence), "d": ready}))
        for guild in self.guilds.values():
            await socket.send_str(json.dumps({"op": 0, "t": "GUILD_CREATE", "s": next(self._sequence), "d": guild}))
        self.identified.set()

    # --- REST -----------------------------------------------------------------------------------------
    def _authorised(self, request: web.Request) -> bool:
        self.requests.append((request.method, request.path))
        return request.headers.get("Authorization") == f"Bot {self.token}"

    async def _me(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return error_answer(401, 0, "401: Unauthorized")
        return json_answer(self.bot_user)

    async def _application(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return error_answer(401, 0, "401: Unauthorized")
        owner = {"id": snowflake(), "username": "owner", "discriminator": "0", "avatar": None}
        return json_answer({"id": self.application_id, "name": "riskon", "description": "", "icon": None,
                      "bot_public": False, "bot_require_code_grant": False, "owner": owner, "verify_key": "0" * 64,
                      "flags": 0, "summary": ""})

    async def _gateway_url(self, request: web.Request) -> web.Response:
        return json_answer({"url": self.gateway, "shards": 1,
                      "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}})

    async def _sync(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return error_answer(401, 0, "401: Unauthorized")
        if request.match_info["app"] != self.application_id:
            return error_answer(403, 50001, "Missing Access")
        guild = request.match_info.get("guild", "global")
        commands = []
        for command in await request.json():
            commands.append({**command, "id": snowflake(), "application_id": self.application_id, "version": "1",
                             "default_member_permissions": command.get("default_member_permissions"),
                             **({"guild_id": guild} if guild != "global" else {})})
        self.synced_commands[guild] = commands
        return json_answer(commands)

    async def _get_channel(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return error_answer(401, 0, "401: Unauthorized")
        channel = self.channels.get(request.match_info["channel"])
        return json_answer(channel) if channel else error_answer(404, 10003, "Unknown Channel")

    def _too_large(self, files: dict[str, bytes]) -> web.Response | None:
        if sum(len(data) for data in files.values()) > self.attachment_limit:
            return error_answer(413, 40005, "Request entity too large")
        return None

    async def _read_message(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        if request.content_type.startswith("multipart/"):
            payload: dict[str, Any] = {}
            files: dict[str, bytes] = {}
            reader = await request.multipart()
            async for part in reader:
                data = await part.read()  # type: ignore[union-attr]
                if part.name == "payload_json":
                    payload = json.loads(data)
                else:
                    files[part.filename or part.name or "file"] = bytes(data)
            return payload, files
        return await request.json(), {}

    def _global_limited(self) -> web.Response | None:
        """Apply Discord's global limit on a bot (50 requests a second); return the 429 when it is over."""
        now = time.monotonic()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.global_per_second:
            self.global_429s += 1
            retry_after = round(self._recent[0] + 1.0 - now, 3)
            headers = {"Retry-After": str(max(1, round(retry_after))), "X-RateLimit-Global": "true",
                       "X-RateLimit-Scope": "global", "Via": "1.1 google"}
            return json_answer({"message": "You are being rate limited.", "retry_after": retry_after, "global": True},
                         429, headers)
        self._recent.append(now)
        return None

    def _limited(self, target: str, bucket_id: str) -> tuple[web.Response | None, dict[str, str]]:
        """Apply a queued or earned 429 for a channel or webhook; return it, or the headers for a success."""
        now = time.monotonic()
        bucket = self.buckets.setdefault(target, Bucket(self.channel_limit, self.channel_window))
        queued = self.faults.take(target)
        retry_after = (queued.retry_after or 0.0) if queued is not None else bucket.take(now)
        headers = bucket.headers(now, bucket_id)
        if retry_after:
            headers.update({"Retry-After": str(max(1, round(retry_after))), "X-RateLimit-Scope": "user",
                            "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                            "Via": "1.1 google"})
            body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
            return json_answer(body, 429, headers), headers
        return None, headers

    def _message(self, channel_id: str, payload: dict[str, Any], files: dict[str, bytes], author: dict[str, Any],
                 webhook_id: str = "") -> dict[str, Any]:
        attachments = [
            {"id": snowflake(), "filename": name, "size": len(data), "url": f"https://cdn.discordapp.com/{name}",
             "proxy_url": f"https://media.discordapp.net/{name}", "content_type": "image/png"}
            for name, data in files.items()
        ]
        message = {"id": snowflake(), "channel_id": channel_id, "author": author, "content": payload.get("content") or "",
                   "timestamp": "2026-01-01T00:00:00+00:00", "edited_timestamp": None, "tts": False,
                   "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": attachments,
                   "embeds": payload.get("embeds") or [], "pinned": False, "type": 0, "flags": payload.get("flags", 0),
                   "components": []}
        if webhook_id:
            message["webhook_id"] = webhook_id
        return message

    async def _record(self, posted: Posted) -> None:
        async with self._arrived:
            self.messages.append(posted)
            self._arrived.notify_all()

    async def _channel_message(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return error_answer(401, 0, "401: Unauthorized")
        channel_id = request.match_info["channel"]
        if self.gone.get(channel_id) == 403:
            return error_answer(403, 50001, "Missing Access")
        if self.gone.get(channel_id) == 400:
            return error_answer(400, 50083, "Thread is archived")
        if channel_id not in self.channels or self.gone.get(channel_id) == 404:
            return error_answer(404, 10003, "Unknown Channel")
        if (refused := self._global_limited()) is not None:
            return refused
        limited, headers = self._limited(channel_id, "channel-messages")
        if limited is not None:
            return limited
        payload, files = await self._read_message(request)
        if self.denied.get(channel_id) == "send" or (files and self.denied.get(channel_id) == "attach"):
            return error_answer(403, 50013, "Missing Permissions")
        if files:
            payload.setdefault("attachments", list(files))
        if (refused := self._too_large(files)) is not None:
            return refused
        problem = validate_message(payload)
        if problem:
            return json_answer(problem, 400, headers)
        nonce = str(payload.get("nonce") or "")
        if payload.get("enforce_nonce") and nonce in self._nonces:
            # Discord: a repeated nonce within minutes returns the message it created, and creates none.
            return json_answer(self._nonces[nonce], 200, headers)
        await self._record(Posted(channel_id, payload, files))
        message = self._message(channel_id, payload, files, self.bot_user)
        if payload.get("enforce_nonce") and nonce:
            self._nonces[nonce] = message
        if channel_id in self.slow:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.slow[channel_id])
        return json_answer(message, 200, headers)

    async def _webhook(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        hook_id, token = request.match_info["id"], request.match_info["token"]
        if token in self._interactions:  # an interaction follow-up message
            payload, files = await self._read_message(request)
            return await self._answer(self._interactions[token]["id"], {"type": 0, "followup": True, "data": payload},
                                      files)
        hook = self.webhooks.get(hook_id)
        if hook is None:
            return error_answer(404, 10015, "Unknown Webhook")
        if hook["token"] != token:
            return error_answer(401, 50027, "Invalid Webhook Token")
        limited, headers = self._limited(hook_id, "webhook-" + hook_id)
        if limited is not None:
            return limited
        payload, files = await self._read_message(request)
        if (refused := self._too_large(files)) is not None:
            return refused
        problem = validate_message(payload)
        if problem:
            return json_answer(problem, 400, headers)
        thread_id = request.query.get("thread_id", "")
        await self._record(Posted(hook["channel_id"], payload, files, webhook_id=hook_id, thread_id=thread_id))
        if request.query.get("wait", "false").lower() not in ("true", "1"):
            return web.Response(status=204, headers=headers)
        author = {"id": hook_id, "username": payload.get("username") or "riskon", "discriminator": "0000",
                  "avatar": None, "bot": True}
        return json_answer(self._message(thread_id or hook["channel_id"], payload, files, author, hook_id), 200, headers)

    async def _callback(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        token = request.match_info["token"]
        interaction = self._interactions.get(token)
        if interaction is None or interaction["id"] != request.match_info["id"]:
            return error_answer(404, 10062, "Unknown interaction")
        if self.responses.get(interaction["id"]) and not self.responses[interaction["id"]][-1].get("followup"):
            if any(r.get("type") in (4, 5, 8) for r in self.responses[interaction["id"]]):
                return error_answer(400, 40060, "Interaction has already been acknowledged.")
        payload, files = await self._read_message(request)
        return await self._answer(interaction["id"], payload, files, request.query.get("with_response") in ("1", "true"))

    async def _edit_original(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        interaction = self._interactions.get(request.match_info["token"])
        if interaction is None:
            return error_answer(404, 10015, "Unknown Webhook")
        payload, files = await self._read_message(request)
        return await self._answer(interaction["id"], {"type": 7, "edit": True, "data": payload}, files)

    async def _answer(self, interaction_id: str, payload: dict[str, Any], files: dict[str, bytes],
                      with_response: bool = False) -> web.Response:
        data = payload.get("data") or {}
        if payload.get("type") in (4, 7) or payload.get("followup"):
            problem = validate_message(data)
            if problem:
                return json_answer(problem, 400)
        answer = {**payload, "files": files}
        self.responses.setdefault(interaction_id, []).append(answer)
        # A deferral (type 5) is not the reply yet: wait for the edit or follow-up that carries it.
        if payload.get("type") != 5:
            self._answered[interaction_id].set()
        interaction = self._interactions_by_id(interaction_id)
        message = self._message(interaction["channel_id"], data, files, self.bot_user)
        if payload.get("edit") or payload.get("followup"):
            return json_answer(message)
        if not with_response:
            return web.Response(status=204)
        resource: dict[str, Any] = {"type": payload.get("type")}
        if payload.get("type") in (4, 5):
            resource["message"] = message
        return json_answer({"interaction": {"id": interaction_id, "type": interaction["type"],
                                      "response_message_id": message["id"],
                                      "response_message_loading": payload.get("type") == 5,
                                      "response_message_ephemeral": bool(data.get("flags", 0) & 64)},
                      "resource": resource})

    def _interactions_by_id(self, interaction_id: str) -> dict[str, Any]:
        return next(i for i in self._interactions.values() if i["id"] == interaction_id)


def riskon_config(tmp_path: Any, *, bot: dict[str, Any] | None = None, webhook: dict[str, Any] | None = None,
                  admins: tuple[str, ...] = ()) -> str:
    """Return a riskon config.yaml with two symbols, two rules, and the given Discord channel sections."""
    channels = {}
    if bot is not None:
        channels["discord"] = bot
    if webhook is not None:
        channels["discord_webhook"] = webhook
    return json.dumps({
        "feeds": {"replay": {"kind": "replay", "path": str(tmp_path)}},
        "symbols": [{"id": "^RUT", "feed": "replay", "asset_class": "index"},
                    {"id": "BTC", "feed": "replay", "asset_class": "crypto"}],
        "rules": [{"id": "rut_ath", "kind": "new_ath", "symbols": ["^RUT"]},
                  {"id": "btc_ath", "kind": "new_ath", "symbols": ["BTC"]}],
        "admins": list(admins),
        "channels": channels,
    })  # JSON is YAML, and needs no escaping of ^ or $
