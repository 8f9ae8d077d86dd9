"""Load config.yaml into typed sections, with errors that name the key path and line."""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alerts.errors import RiskonError
from alerts.rules import RULES
from alerts.rules.base import Rule

MAX_CONFIG_BYTES = 1_000_000
MAX_ALIASES = 200  # a YAML "billion laughs" document expands aliases exponentially; real configs need few
MAX_DEPTH = 30  # real configs nest five or six levels; deeper ones would exhaust the parser's recursion
ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(RiskonError):
    """Every problem found in a config file, each naming its key path and line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(Section):
    """Where riskon keeps its SQLite database."""

    path: str = Field("riskon.db", description="SQLite file: bars cache, fired alerts, rule state, subscriptions, outbox")


class ScheduleConfig(Section):
    """How often the delivery job runs and how failing sources back off."""

    deliver_every_seconds: float = Field(2.0, gt=0, le=3600, description="how often the outbox is drained")
    retry_base_seconds: float = Field(5.0, gt=0, le=3600, description="first retry delay of a failed delivery")
    retry_max_seconds: float = Field(900.0, gt=0, le=86400, description="longest delay between delivery retries")
    max_attempts: int = Field(12, ge=1, le=1000, description="attempts before a delivery is marked failed")
    backoff_max_seconds: float = Field(900.0, gt=0, le=86400, description="longest pause before re-polling a failing feed")
    group_alerts: bool = Field(True, description="send the alerts one poll fired for one chat as one message")


class HealthConfig(Section):
    """The optional HTTP endpoint for monitoring: /healthz and Prometheus /metrics."""

    enabled: bool = Field(False, description="serve /healthz and /metrics over HTTP")
    host: str = Field("127.0.0.1", min_length=1, description="address to bind; 0.0.0.0 only inside a container or "
                                                            "behind a firewall")
    port: int = Field(9108, ge=0, le=65535, description="port to bind (0: any free port, logged at start)")
    outbox_backlog: int = Field(1000, ge=1, le=10_000_000, description="deliveries waiting (pending or retrying) "
                                                                       "above which /healthz says degraded")
    channel_retries: int = Field(10, ge=1, le=100_000, description="sends in a row a channel must retry before "
                                                                   "/healthz says it is down")


class FeedConfig(Section):
    """One feed: its kind, how often it is polled, and its kind's own settings."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str = Field(description="feed kind: replay, yahoo, exchange, composite, flows")
    every_seconds: float = Field(60.0, gt=0, le=86400, description="poll interval")

    @property
    def settings(self) -> dict[str, Any]:
        """Return the kind-specific keys."""
        return dict(self.model_extra or {})


class SymbolConfig(Section):
    """A market riskon watches, the feed it comes from, and its names elsewhere."""

    id: str = Field(min_length=1, max_length=40, description="riskon's name for it: ^RUT, IWN, BTC, ALTS")
    feed: str = Field(description="the feed (by name) that serves its bars")
    source: str | None = Field(None, description="the feed's own name for it (default: id)")
    csv: str | None = Field(None, description="file stem in a --data folder (default: id without ^, / as -)")
    asset_class: Literal["index", "etf", "crypto", "composite"] = "index"
    history_feed: str | None = Field(None, description="a feed with a longer history to backfill from")
    history_source: str | None = Field(None, description="the history feed's name for it")

    @property
    def source_name(self) -> str:
        """Return the symbol's name at its feed."""
        return self.source or self.id

    @property
    def csv_stem(self) -> str:
        """Return the CSV file stem used by replay and backtest."""
        return self.csv or self.id.lstrip("^").replace("/", "-")


class RuleConfig(Section):
    """A configured rule: its id, kind, symbols, notify policy and its kind's parameters."""

    model_config = ConfigDict(extra="allow", frozen=True)
    id: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.-]+$", description="unique rule name")
    kind: str = Field(description="rule kind, e.g. new_ath")
    symbols: list[str] = Field(min_length=1, description="symbols (ids) the rule watches")
    enabled: bool = True
    frequency: Literal["once", "once_per_bar", "every_time"] = Field(
        "once", description="once: each event once ever; once_per_bar / every_time: see the notify policy"
    )
    cooldown: str | None = Field(None, description="minimum time between two alerts of this rule per symbol, e.g. 6h")

    @property
    def params(self) -> dict[str, Any]:
        """Return the kind-specific parameters."""
        return dict(self.model_extra or {})


class Config(Section):
    """The whole of config.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    storage: StorageConfig = StorageConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    feeds: dict[str, FeedConfig] = Field(default_factory=dict)
    symbols: list[SymbolConfig] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(default_factory=list)
    channels: dict[str, Any] = Field(default_factory=dict)
    admins: list[str] = Field(default_factory=list, description="user ids allowed to run admin commands")
    health: HealthConfig = HealthConfig()
    source_path: str | None = Field(None, exclude=True)

    @field_validator("admins", mode="before")
    @classmethod
    def _admin_ids_as_text(cls, value: Any) -> Any:
        return [str(v) for v in value] if isinstance(value, list) else value

    def symbol(self, symbol_id: str) -> SymbolConfig | None:
        """Return a symbol's config by id."""
        return next((s for s in self.symbols if s.id == symbol_id), None)

    def build_rules(self) -> list[tuple[Rule, RuleConfig]]:
        """Instantiate every enabled rule with its validated parameters."""
        built = []
        for rule in self.rules:
            if rule.enabled:
                kind = RULES[rule.kind]
                built.append((kind(rule.id, kind.Params(**rule.params)), rule))
        return built


@dataclass
class _Located:
    """Line numbers of every key path in a YAML document."""

    lines: dict[tuple[Any, ...], int]
    filename: str

    def where(self, path: tuple[Any, ...]) -> str:
        for cut in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                return f"({self.filename}:{line})"
        return f"({self.filename})"


def shown(value: Any, limit: int = 60) -> str:
    """Return a value as a message quotes it: cut short, so a problem line never echoes a whole document."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_path(path: tuple[Any, ...]) -> str:
    """Render a key path as `rules[2].window`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + shown(part)
    return text or "(top level)"


def _line_map(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int], budget: list[int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if len(path) > MAX_DEPTH:
        raise ConfigError([f"{format_path(path[:MAX_DEPTH])}: nested more than {MAX_DEPTH} levels deep "
                           f"(line {node.start_mark.line + 1}); not a riskon config"])
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(["config expands to more than 20,000 values (nested YAML aliases?): refusing a possible alias bomb"])
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _line_map(value_node, path + (key,), lines, budget)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, path + (index,), lines, budget)


class _CountingLoader(yaml.SafeLoader):
    """A safe loader that refuses documents with more aliases than any real config needs."""

    alias_count = 0

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                raise ConfigError([f"too many YAML aliases (over {MAX_ALIASES}): refusing a possible alias bomb"])
        return super().compose_node(parent, index)


def _interpolate(value: Any, path: tuple[Any, ...], env: dict[str, str], problems: list[str], where: _Located) -> Any:
    """Replace ${VAR} (and ${VAR:-default}) in every string with the environment's value."""
    if isinstance(value, str):
        if "\x00" in value or not value.isascii() and _unencodable(value):
            # "\0" or "\ud800" escapes: file paths and URLs built from them fail deep inside the OS or a library.
            problems.append(f"{format_path(path)}: holds a NUL character or an unpaired surrogate escape {where.where(path)}")
            return value

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(
                f"{format_path(path)}: environment variable {name} is not set {where.where(path)}"
            )
            return ""

        return ENV_PATTERN.sub(substitute, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, path + (k,), env, problems, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, path + (i,), env, problems, where) for i, v in enumerate(value)]
    return value


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


FRIENDLY = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "list_type": "must be a list",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
    "missing": "is required",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long",
    "finite_number": "must be a finite number",
}


def _describe_error(error: dict[str, Any], known_fields: list[str]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        guess = difflib.get_close_matches(key, known_fields, n=1)
        hint = f" (did you mean '{guess[0]}'?)" if guess else ""
        return f"unknown key{hint}"
    if kind == "literal_error":
        return "must be one of " + error.get("ctx", {}).get("expected", "the allowed values")
    template = FRIENDLY.get(kind)
    if template:
        ctx = {k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in error.get("ctx", {}).items()}
        try:
            return template.format(**ctx)
        except (KeyError, IndexError):
            return template
    return error["msg"][0].lower() + error["msg"][1:]


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Return the field names valid at the parent of `loc`, for "did you mean" hints."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        nested = [a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        current = nested[0] if nested else None
        if current is None and args:
            inner = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            current = inner[0] if inner else None
    return list(getattr(current, "model_fields", {}).keys()) if current else []


def _validation_problems(
    exc: ValidationError, model: type[BaseModel], prefix: tuple[Any, ...], where: _Located
) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = prefix + tuple(error["loc"])
        known = _fields_at(model, tuple(error["loc"]))
        problems.append(f"{format_path(loc)}: {_describe_error(error, known)} {where.where(loc)}")
    return problems


def _did_you_mean(value: str, known: list[str], listing: str = "known") -> str:
    """Return a hint naming the closest known value, or listing them all."""
    guess = difflib.get_close_matches(value, known, n=1)
    if guess:
        return f" (did you mean '{guess[0]}'?)"
    return f" ({listing}: {', '.join(sorted(known)) or 'none'})" if listing else ""


def _check_kind(
    what: str, kind: str, registry: dict[str, type[BaseModel]], settings: dict[str, Any],
    common: type[BaseModel], path: tuple[Any, ...], where: _Located,
) -> list[str]:
    """Check one rule's or feed's kind and its kind-specific keys against the kind's model."""
    loc = path + ("kind",)
    if kind not in registry:
        return [f"{format_path(loc)}: unknown {what} kind '{shown(kind)}'{_did_you_mean(kind, list(registry))} {where.where(loc)}"]
    model = registry[kind]
    try:
        model(**settings)
    except ValidationError as exc:
        allowed = list(model.model_fields) + list(common.model_fields)
        return [f"{format_path(path + tuple(e['loc']))}: {_describe_error(e, allowed)} {where.where(path + tuple(e['loc']))}"
                for e in exc.errors()]
    return []


def _validate_kind_settings(config: Config, where: _Located) -> list[str]:
    """Check each rule's, feed's and channel's own settings against its kind's model."""
    from bot.feeds import FEEDS
    from bot.notifiers import NOTIFIERS

    problems: list[str] = []
    rule_params = {kind: rule.Params for kind, rule in RULES.items()}
    for index, rule in enumerate(config.rules):
        problems += _check_kind("rule", rule.kind, rule_params, rule.params, RuleConfig, ("rules", index), where)
    feed_settings = {kind: feed.Settings for kind, feed in FEEDS.items()}
    for name, feed in config.feeds.items():
        problems += _check_kind("feed", feed.kind, feed_settings, feed.settings, FeedConfig, ("feeds", name), where)
    channels = {k: v.Settings for k, v in NOTIFIERS.items()}
    for name, settings in config.channels.items():
        path = ("channels", name)
        if name not in channels:
            problems.append(f"{format_path(path)}: unknown channel{_did_you_mean(name, list(channels))} {where.where(path)}")
            continue
        try:
            channels[name].model_validate(settings or {})
        except ValidationError as exc:
            problems.extend(_validation_problems(exc, channels[name], path, where))
    return problems


def _validate_references(config: Config, where: _Located) -> list[str]:
    """Check that symbols name real feeds and rules name real symbols, and that ids are unique."""
    problems: list[str] = []
    seen: set[str] = set()
    for index, symbol in enumerate(config.symbols):
        path = ("symbols", index)
        if symbol.id in seen:
            problems.append(f"{format_path(path + ('id',))}: symbol '{symbol.id}' is listed twice {where.where(path + ('id',))}")
        seen.add(symbol.id)
        for key in ("feed", "history_feed"):
            feed = getattr(symbol, key)
            if feed is not None and feed not in config.feeds:
                hint = _did_you_mean(feed, list(config.feeds), "feeds")
                problems.append(f"{format_path(path + (key,))}: no feed named '{shown(feed)}'{hint} {where.where(path + (key,))}")
    rule_ids: set[str] = set()
    for index, rule in enumerate(config.rules):
        path = ("rules", index)
        if rule.id in rule_ids:
            problems.append(f"{format_path(path + ('id',))}: rule id '{rule.id}' is used twice {where.where(path + ('id',))}")
        rule_ids.add(rule.id)
        for position, symbol in enumerate(rule.symbols):
            if symbol not in seen:
                hint = _did_you_mean(symbol, list(seen), "")
                loc = path + ("symbols", position)
                problems.append(f"{format_path(loc)}: unknown symbol '{shown(symbol)}'{hint} {where.where(loc)}")
        if rule.cooldown is not None and parse_duration(rule.cooldown) is None:
            loc = path + ("cooldown",)
            problems.append(f"{format_path(loc)}: must be a duration like 30m, 6h or 2d {where.where(loc)}")
    return problems


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float | None:
    """Turn '30m', '6h', '2d' into seconds; None when the text is not a duration."""
    match = DURATION.match(str(text).lower())
    if not match:
        return None
    return float(match.group(1)) * DURATION_SECONDS[match.group(2)]


def parse_config(text: str, filename: str = "config.yaml", env: dict[str, str] | None = None) -> Config:
    """Parse and validate a config document; raise ConfigError listing every problem."""
    env = dict(os.environ) if env is None else env
    if len(text.encode("utf-8", "replace")) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{filename}: file is larger than {MAX_CONFIG_BYTES // 1000} kB; not a riskon config"])
    try:
        loader = _CountingLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError([f"{filename}: nested too deeply to read; not a riskon config"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{filename}:{mark.line + 1}" if mark else filename
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"not valid YAML: {problem} ({line})"]) from None
    if node is None:
        raise ConfigError([f"{filename} is empty: it needs at least feeds, symbols and rules"])
    lines: dict[tuple[Any, ...], int] = {}
    _line_map(node, (), lines, [20_000])
    where = _Located(lines, filename)
    try:
        data = yaml.load(text, Loader=_CountingLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError([f"not valid YAML: {exc} ({filename})"]) from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits, or a date like 2020-13-45
        raise ConfigError([f"a value cannot be read: {str(exc).split(';')[0]} ({filename})"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): must be a mapping of sections (storage, feeds, symbols, rules, channels) ({filename}:1)"])
    if any(not isinstance(key, str) for key in data):
        raise ConfigError([f"(top level): every section name must be text ({filename}:1)"])
    problems: list[str] = []
    data = _interpolate(data, (), env, problems, where)
    if problems:
        raise ConfigError(problems)
    try:
        config = Config.model_validate({**data, "source_path": None})
    except ValidationError as exc:
        raise ConfigError(_validation_problems(exc, Config, (), where)) from None
    problems = _validate_references(config, where) + _validate_kind_settings(config, where)
    if problems:
        raise ConfigError(problems)
    return config.model_copy(update={"source_path": filename})


def load_config(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> Config:
    """Read and validate a config file; raise ConfigError naming every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such config file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    config = parse_config(text, path.name, env)
    return config.model_copy(update={"source_path": str(path)})
