"""Load config.yaml into typed sections, with errors that name the key path and line."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from bot.config.checks import cross_check
from bot.config.messages import escape_hidden, format_path, shown, validation_problems
from bot.config.models import (
    Config,
    ConfigError,
    FeedConfig,
    HealthConfig,
    RuleConfig,
    ScheduleConfig,
    Section,
    StorageConfig,
    SymbolConfig,
)
from bot.config.source import MAX_CONFIG_BYTES, interpolate, read_yaml

__all__ = [
    "Config", "ConfigError", "FeedConfig", "HealthConfig", "RuleConfig", "ScheduleConfig", "Section", "StorageConfig",
    "SymbolConfig", "escape_hidden", "format_path", "load_config", "parse_config", "shown",
]


def parse_config(text: str, filename: str = "config.yaml", env: dict[str, str] | None = None) -> Config:
    """Parse and validate a config document; raise ConfigError listing every problem."""
    env = dict(os.environ) if env is None else env
    filename = escape_hidden(filename)
    data, where = read_yaml(text, filename)
    if not isinstance(data, dict):
        raise ConfigError(
            [f"(top level): must be a mapping of sections (storage, feeds, symbols, rules, channels) ({filename}:1)"])
    if any(not isinstance(key, str) for key in data):
        raise ConfigError([f"(top level): every section name must be text ({filename}:1)"])
    problems: list[str] = []
    data = interpolate(data, (), env, problems, where)
    if problems:
        raise ConfigError(problems)
    try:
        config = Config.model_validate({**data, "source_path": None})
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, Config, (), where)) from None
    problems = cross_check(config, where)
    if problems:
        raise ConfigError(problems)
    return config.model_copy(update={"source_path": filename})


def load_config(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> Config:
    """Read and validate a config file; raise ConfigError naming every problem."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            # A bounded read: /dev/zero, or any endless stream named as the config, would fill the memory.
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError([f"{escape_hidden(str(path))}: file is larger than {MAX_CONFIG_BYTES // 1000} kB; "
                               "not a riskon config"])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{escape_hidden(str(path))}: no such config file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{escape_hidden(str(path))}: cannot read: {exc}"]) from None
    config = parse_config(text, path.name, env)
    return config.model_copy(update={"source_path": str(path)})
