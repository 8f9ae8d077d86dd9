"""Logging setup: plain or JSON lines, with every configured secret redacted from every record."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Iterable

# Bot API URLs carry the token in the path (/bot<TOKEN>/method): redact the shape even for unknown tokens.
TOKEN_IN_URL = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")
# Discord webhook and interaction URLs carry their token in the path (/webhooks/<id>/<TOKEN>), and discord.py
# logs them at DEBUG with the API base it was pointed at, so the configured URL alone does not match.
DISCORD_TOKEN_IN_URL = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9._-]{20,}")
# discord.py logs each gateway event at DEBUG as a dict: an interaction's "token" answers it for 15 minutes.
TOKEN_FIELD = re.compile(r"""((?:'|")token(?:'|")\s*:\s*(?:'|"))[^'"]{8,}""")
REDACTED = "***"


class RedactSecrets(logging.Filter):
    """Replace known secret values (and token-shaped URL parts) in a record's final message."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Return text with every secret replaced."""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        text = DISCORD_TOKEN_IN_URL.sub(r"\g<1>" + REDACTED, text)
        text = TOKEN_FIELD.sub(r"\g<1>" + REDACTED, text)
        return TOKEN_IN_URL.sub("/bot" + REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if record.exc_info:
            # Format the traceback now, redacted, so no handler prints the raw one.
            formatter = logging.Formatter()
            record.exc_text = self.redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        record.msg, record.args = clean, None
        return True


class JsonFormatter(logging.Formatter):
    """Format records as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            payload["error"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False)


def setup_logging(level: str = "INFO", json_lines: bool = False, secrets: Iterable[str] = ()) -> RedactSecrets:
    """Send logs to stderr, redacting secrets on every handler; return the filter to add secrets later."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    redact = RedactSecrets(secrets)
    handler.addFilter(redact)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO; with Telegram that URL holds the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # yfinance warns per request (cookie, crumb); the yahoo feed already reports each failing symbol once.
    logging.getLogger("yfinance").setLevel(logging.ERROR)
    return redact
