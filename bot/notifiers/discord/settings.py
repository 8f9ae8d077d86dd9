"""Settings of the two Discord channels, `discord` (a bot) and `discord_webhook` (webhooks only), and their URLs."""

from __future__ import annotations

import re
from typing import Any

import yarl
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_core import PydanticCustomError

from alerts.errors import RiskonError

SNOWFLAKE = re.compile(r"^[0-9]{15,21}$")
# The shape discord.py's Webhook.from_url accepts; anything else is a config error.
WEBHOOK_URL = re.compile(r"discord(?:app)?\.com/api/webhooks/(?P<id>[0-9]{17,20})/(?P<token>[A-Za-z0-9.\-_]{60,})")


class DiscordSetupError(RiskonError):
    """Signal a Discord channel that cannot be built: a missing variable, a malformed URL, an unknown rule."""


def invalid(message: str) -> PydanticCustomError:
    """Build a validation error whose message reads as written (no "Value error," in front)."""
    return PydanticCustomError("discord_setting", message)


def _ids_as_text(value: Any) -> Any:
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value) if isinstance(value, int) else value


def _check_ids(ids: list[str]) -> list[str]:
    for item in ids:
        if not SNOWFLAKE.match(item):
            raise invalid(f"'{item}' is not a Discord id (15-21 digits; copy it with Developer Mode on)")
    return ids


def _check_url(value: str | None, schemes: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    url = yarl.URL(value)
    if url.scheme not in schemes or not url.host:
        raise invalid(f"must be a {' or '.join(schemes)} URL, e.g. {schemes[-1]}://proxy.example:8080/...")
    return value.rstrip("/") if schemes[0] == "http" else value


class ApiBase(BaseModel):
    """Where Discord's REST API is, for a self-hosted proxy (and tests)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    api_base: str | None = Field(None, description="REST API base URL; default https://discord.com/api/v10")

    @field_validator("api_base")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        return _check_url(value, ("http", "https"))


class DiscordSettings(ApiBase):
    """Settings of the Discord bot channel: alerts to server channels and slash commands."""

    enabled: bool = True
    gateway: str | None = Field(None, description="gateway WebSocket URL (a proxy's); default wss://gateway.discord.gg/")
    token: SecretStr = Field(description="bot token from the Developer Portal; write ${DISCORD_BOT_TOKEN}, never the value")
    guilds: list[str] = Field(default_factory=list, description="server ids to sync slash commands to at once; "
                                                                "empty: global commands (Discord may take up to an hour)")
    manager_roles: list[str] = Field(default_factory=list, description="role names whose members may change a "
                                                                       "channel's subscriptions (Manage Channels always may)")
    sync_commands: bool = Field(True, description="register the slash commands with Discord at start, when they "
                                "changed since the last sync")
    login_retry_seconds: float = Field(
        5.0, gt=0, le=300, description="first wait before logging in again when Discord cannot be reached at start"
    )
    ready_timeout_seconds: float = Field(30.0, gt=0, le=600, description="how long start-up waits for the gateway")
    guild_ready_timeout: float = Field(2.0, ge=0, le=60, description="discord.py's wait for servers after READY")
    messages_per_second: float = Field(
        40.0, gt=0, le=50, description="whole-bot pace of alert messages (Discord allows a bot 50 requests a second)"
    )
    answer_within_seconds: float = Field(
        2.0, ge=0, le=2.5, description="a command slower than this first shows 'thinking…' (Discord allows 3 s); 0: always"
    )
    max_ratelimit_wait_seconds: float = Field(
        30.0, ge=30, le=3600, description="rate limits up to this long are waited out; longer ones are retried later"
    )

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if not text or text != text.strip() or any(c.isspace() for c in text):
            raise invalid("must be a bot token (one word, no spaces); the value is not shown")
        return value

    @field_validator("gateway")
    @classmethod
    def _gateway_url(cls, value: str | None) -> str | None:
        return _check_url(value, ("ws", "wss"))

    @field_validator("guilds", mode="before")
    @classmethod
    def _guild_ids_as_text(cls, value: Any) -> Any:
        return _ids_as_text(value)

    @field_validator("guilds")
    @classmethod
    def _guild_ids(cls, value: list[str]) -> list[str]:
        return _check_ids(value)


class WebhookChat(BaseModel):
    """One webhook channel: the variable holding its URL, an optional thread, and which alerts it gets."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: SecretStr = Field(description="the webhook's URL; write ${DISCORD_WEBHOOK_URL}, never the value (it is a secret)")
    thread_id: str | None = Field(None, description="post into this thread of the webhook's channel")
    rules: list[str] = Field(default_factory=list, description="only these rule ids or kinds (default: every rule)")
    symbols: list[str] = Field(default_factory=list, description="only these symbols (default: every symbol)")
    username: str | None = Field(None, max_length=80, description="name shown on the messages (default: the webhook's)")

    @field_validator("url")
    @classmethod
    def _webhook_shape(cls, value: SecretStr) -> SecretStr:
        if not WEBHOOK_URL.search(value.get_secret_value()):
            raise invalid("must be a Discord webhook URL, https://discord.com/api/webhooks/<id>/<token> "
                             "(the value is not shown)")
        return value

    @field_validator("thread_id", mode="before")
    @classmethod
    def _thread_as_text(cls, value: Any) -> Any:
        return _ids_as_text(value)

    @field_validator("thread_id")
    @classmethod
    def _thread(cls, value: str | None) -> str | None:
        return _check_ids([value])[0] if value is not None else None


class DiscordWebhookSettings(ApiBase):
    """Settings of webhook-only Discord channels: alerts with no bot token at all."""

    enabled: bool = True
    hooks: dict[str, WebhookChat] = Field(min_length=1, description="name -> webhook; the name appears in logs")
    send_timeout_seconds: float = Field(30.0, gt=0, le=600, description="give up one send (and retry later) after this")

    @field_validator("hooks")
    @classmethod
    def _hook_names(cls, value: dict[str, WebhookChat]) -> dict[str, WebhookChat]:
        for name in value:
            if not re.match(r"^[A-Za-z0-9_.-]{1,60}$", name):
                raise invalid(f"webhook name '{name[:60]}' must be letters, digits, '_', '.' or '-'")
        return value


def apply_endpoints(settings: ApiBase) -> None:
    """Point discord.py at the configured API base and gateway (process-wide settings of the library)."""
    import discord

    if settings.api_base:
        discord.http.Route.BASE = settings.api_base
    gateway = getattr(settings, "gateway", None)
    if gateway:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)


def check_filters(config: Any, rules: list[str], symbols: list[str], where: str) -> list[str]:
    """Return problems with rule and symbol names a channel filters on."""
    rule_names = {r.id for r in config.rules} | {r.kind for r in config.rules}
    symbol_ids = {s.id for s in config.symbols}
    problems = [f"{where}.rules: unknown rule '{r}'" for r in rules if r not in rule_names]
    return problems + [f"{where}.symbols: unknown symbol '{s}'" for s in symbols if s not in symbol_ids]
