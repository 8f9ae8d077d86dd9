"""Settings of the Telegram channel: `channels.telegram` in config.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError


class TelegramSettings(BaseModel):
    """Settings of the Telegram channel (`channels.telegram` in config.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    token: SecretStr = Field(description="bot token from @BotFather; write ${TELEGRAM_BOT_TOKEN}, never the value")
    base_url: str = Field("https://api.telegram.org/bot", description="Bot API base URL (a self-hosted server's)")
    base_file_url: str = Field("https://api.telegram.org/file/bot", description="Bot API file base URL")
    mode: Literal["polling", "webhook"] = Field("polling", description="how commands arrive")
    poll_timeout_seconds: int = Field(30, ge=0, le=50, description="long-polling wait of getUpdates")
    webhook_url: str | None = Field(None, description="public HTTPS URL Telegram posts updates to (webhook mode)")
    webhook_listen: str = Field("127.0.0.1", description="address the webhook server binds")
    webhook_port: int = Field(8443, ge=0, le=65535, description="port the webhook server binds")
    webhook_secret: SecretStr | None = Field(None, description="secret Telegram sends back in each webhook call")
    messages_per_second: float = Field(
        30.0, gt=0, le=1000, description="most messages the bot sends in any one second (Telegram allows 30)")
    group_messages_per_minute: float = Field(20.0, gt=0, le=1000, description="pace per group (Telegram: 20/min)")
    chat_interval_seconds: float = Field(1.0, ge=0, le=60, description="least time between two messages to one chat")
    request_timeout_seconds: float = Field(20.0, gt=0, le=300, description="connect/read/write timeout of a call")
    register_commands: bool = Field(True, description="publish the command list with setMyCommands at start")

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        # The usual slips, said plainly: the value itself is never shown, so "not a token" alone leaves them hidden.
        if not text:
            raise PydanticCustomError("bot_token", "is empty (its environment variable is set to nothing?)")
        if text != text.strip():
            raise PydanticCustomError("bot_token", "has a space or line break at its start or end (copied with a "
                                      "newline or a Windows line end?); the value is not shown")
        head, _, tail = text.partition(":")
        if not head.isdigit() or not tail or any(not (c.isalnum() or c in "_-") for c in tail):
            raise PydanticCustomError(
                "bot_token", "must be a bot token like 123456:ABC-def (as @BotFather gives it); the value is not shown")
        return value

    @model_validator(mode="after")
    def _validate_webhook(self) -> TelegramSettings:
        if self.mode == "webhook" and not self.webhook_url:
            raise PydanticCustomError(
                "webhook_url", "webhook mode needs webhook_url (the public HTTPS URL Telegram posts updates to)")
        return self
