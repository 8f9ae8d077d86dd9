"""Say which configured values are secrets (tokens, webhook URLs, keys): the only values logs must mask."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from bot.config.models import Config
from bot.config.source import ENV_PATTERN

# Names of settings, and of environment variables, that hold secrets. A storage path or a date read from the
# environment is not one: masking it made logs say "database ***" and "next run at: *** 12:50:18 UTC".
SECRET_NAME = re.compile(r"token|secret|password|passwd|api_?key|private_?key|webhook|credential", re.IGNORECASE)


def secrets_of(config: Config, env: dict[str, str] | None = None) -> list[str]:
    """Return every secret value of a config: its SecretStr settings, secret-named keys and secret-named ${VARS}."""
    from bot.feeds import FEEDS
    from bot.notifiers import NOTIFIERS

    found: set[str] = set()
    for name, settings in config.channels.items():
        _walk(_validated(NOTIFIERS[name].Settings, settings or {}) if name in NOTIFIERS else settings, name, found)
    for feed in config.feeds.values():
        _walk(_validated(FEEDS[feed.kind].Settings, feed.settings) if feed.kind in FEEDS else feed.settings, "",
              found)
    env = dict(os.environ) if env is None else env
    if config.source_path and Path(config.source_path).is_file():
        names = {m.group(1) for m in ENV_PATTERN.finditer(Path(config.source_path).read_text(encoding="utf-8"))}
        found |= {env[n] for n in names if SECRET_NAME.search(n) and env.get(n)}
    return sorted(s for s in found if s)


def _validated(model: type[BaseModel], settings: Any) -> Any:
    try:
        return model.model_validate(settings)
    except ValidationError:
        return settings  # load_config refused it already; the raw keys still say what is secret


def _walk(value: Any, key: str, found: set[str], typed: bool = False) -> None:
    """Collect secrets: SecretStr values, and in free-form mappings (e.g. ccxt options) secret-named keys' text."""
    if isinstance(value, SecretStr):
        found.add(value.get_secret_value())
    elif isinstance(value, BaseModel):
        # A typed model marks its secrets as SecretStr: its plain text (webhook_listen, base_url) is not one.
        for name in type(value).model_fields:
            _walk(getattr(value, name), name, found, typed=True)
    elif isinstance(value, dict):
        for name, item in value.items():
            _walk(item, str(name), found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _walk(item, key, found, typed)
    elif isinstance(value, str) and not typed and SECRET_NAME.search(key):
        found.add(value)
