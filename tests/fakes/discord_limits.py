"""What Discord allows and how it answers: a message's limits, a channel's rate-limit bucket, JSON answers."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web


def json_answer(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Answer JSON as Discord does."""
    # discord.py parses a body as JSON only when Content-Type is exactly application/json (no charset).
    return web.Response(
        body=json.dumps(payload).encode(), status=status, headers={"Content-Type": "application/json", **(headers or {})}
    )


def error_answer(status: int, code: int, message: str) -> web.Response:
    """Answer an error as Discord does: its HTTP status, its JSON error code and message."""
    return json_answer({"message": message, "code": code}, status)


@dataclass
class Bucket:
    """A per-channel message rate limit: `limit` messages per `window` seconds, like Discord's."""

    limit: int
    window: float
    used: int = 0
    resets_at: float = 0.0

    def take(self, now: float) -> float:
        """Use one request; return 0 when allowed, else seconds until the window resets."""
        if now >= self.resets_at:
            self.used, self.resets_at = 0, now + self.window
        if self.used >= self.limit:
            return self.resets_at - now
        self.used += 1
        return 0.0

    def headers(self, now: float, bucket_id: str) -> dict[str, str]:
        """Return the X-RateLimit-* headers Discord sends with each answer."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.limit - self.used, 0)),
            "X-RateLimit-Reset": f"{time.time() + max(self.resets_at - now, 0):.3f}",
            "X-RateLimit-Reset-After": f"{max(self.resets_at - now, 0):.3f}",
            "X-RateLimit-Bucket": bucket_id,
        }


def validate_message(payload: dict[str, Any]) -> dict[str, Any] | None:
    """Return Discord's 400 Invalid Form Body answer for a message over its limits, or None when it fits."""
    errors: dict[str, Any] = {}

    def too_long(where: dict[str, Any], key: str, limit: int) -> None:
        where[key] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": f"Must be {limit} or fewer in length."}]}

    if len(payload.get("content") or "") > 2000:
        too_long(errors, "content", 2000)
    embeds = payload.get("embeds") or []
    if len(embeds) > 10:
        too_long(errors, "embeds", 10)
    total = 0
    for index, embed in enumerate(embeds):
        problems: dict[str, Any] = {}
        for key, limit in (("title", 256), ("description", 4096)):
            if len(embed.get(key) or "") > limit:
                too_long(problems, key, limit)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            too_long(problems, "fields", 25)
        for position, item in enumerate(fields):
            if len(item.get("name") or "") > 256 or len(item.get("value") or "") > 1024:
                too_long(problems.setdefault("fields", {}), str(position), 1024)
            if not item.get("name") or not item.get("value"):
                problems.setdefault("fields", {})[str(position)] = {
                    "_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}
        if len((embed.get("footer") or {}).get("text") or "") > 2048:
            too_long(problems, "footer", 2048)
        total += sum(len(embed.get(key) or "") for key in ("title", "description"))
        total += len((embed.get("footer") or {}).get("text") or "") + len((embed.get("author") or {}).get("name") or "")
        total += sum(len(f.get("name") or "") + len(f.get("value") or "") for f in fields)
        if problems:
            errors.setdefault("embeds", {})[str(index)] = problems
    if total > 6000:
        too_big = {"code": "MAX_EMBED_SIZE_EXCEEDED", "message": "Embed size exceeds maximum size of 6000"}
        errors["embeds"] = {"_errors": [too_big]}
    if not errors and not payload.get("content") and not embeds and not payload.get("attachments"):
        return {"message": "Cannot send an empty message", "code": 50006}
    return {"message": "Invalid Form Body", "code": 50035, "errors": errors} if errors else None
