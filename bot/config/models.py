"""The typed sections of config.yaml, each field with its default and description."""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_serializer, field_validator
from pydantic_core import PydanticCustomError

from alerts.durations import format_duration, to_timedelta
from alerts.errors import RiskonError
from alerts.evaluate import RuleBinding
from alerts.policy import policy_from
from alerts.rules import RULES
from alerts.rules.base import Rule

ADMIN_ID = re.compile(r"(?:(?:telegram|discord):)?[0-9]{1,20}")
# The shortest intervals any use needs (tests run at these). Below them a typo like 0.0001 polled Yahoo 10,000
# times a second, or spun the outbox drain on the CPU; a replay feed reads no network, so it may step faster.
MIN_POLL_SECONDS = 1.0
MIN_REPLAY_STEP_SECONDS = 0.01
MIN_DELIVER_SECONDS = 0.05


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
    busy_timeout_seconds: float = Field(5.0, gt=0, le=600, description="how long a write waits for another "
                                                                       "process's lock before it fails")

    @field_validator("path")
    @classmethod
    def _a_file_in_the_home_folder(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("path", "must name the database file, e.g. riskon.db")
        # No shell reads this file: "~/riskon.db" made a folder named "~" in the working directory.
        return os.path.expanduser(value)


class ScheduleConfig(Section):
    """How often the delivery job runs and how failing sources back off."""

    deliver_every_seconds: float = Field(2.0, gt=0, le=3600, description="how often the outbox is drained")
    retry_base_seconds: float = Field(5.0, gt=0, le=3600, description="first retry delay of a failed delivery")
    retry_max_seconds: float = Field(900.0, gt=0, le=86400, description="longest delay between delivery retries")
    max_attempts: int = Field(12, ge=1, le=1000, description="attempts before a delivery is marked failed")
    backoff_max_seconds: float = Field(900.0, gt=0, le=86400, description="longest pause before re-polling a failing feed")
    group_alerts: bool = Field(True, description="send the alerts one poll fired for one chat as one message")

    @field_validator("deliver_every_seconds")
    @classmethod
    def _not_spinning(cls, value: float) -> float:
        if value < MIN_DELIVER_SECONDS:
            raise PydanticCustomError("interval", "{value} s is too often: the outbox is drained at most "
                                      f"{1 / MIN_DELIVER_SECONDS:g} times a second", {"value": f"{value:g}"})
        return value


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
    kind: str = Field(description="feed kind: replay, yahoo, exchange, composite, flows, fragility")
    every_seconds: float = Field(60.0, gt=0, le=86400, description="poll interval")

    @field_validator("every_seconds")
    @classmethod
    def _not_hammering(cls, value: float, info: ValidationInfo) -> float:
        kind = str(info.data.get("kind", ""))
        if kind == "replay" and value < MIN_REPLAY_STEP_SECONDS:
            raise PydanticCustomError("interval", "{value} s is too often: a replay feed steps at most "
                                      f"{1 / MIN_REPLAY_STEP_SECONDS:g} days a second", {"value": f"{value:g}"})
        if kind != "replay" and value < MIN_POLL_SECONDS:
            feed = f"{'an' if kind[:1] in tuple('aeiou') else 'a'} {kind} feed" if kind else "a feed"
            raise PydanticCustomError("interval", "{value} s is too often: {feed} is polled at most once a second",
                                      {"value": f"{value:g}", "feed": feed})
        return value

    @property
    def settings(self) -> dict[str, Any]:
        """Return the kind-specific keys."""
        return dict(self.model_extra or {})


class SymbolConfig(Section):
    """A market riskon watches, the feed it comes from, and its names elsewhere."""

    id: str = Field(min_length=1, max_length=40, description="riskon's name for it: ^RUT, IWN, BTC, ALTS")
    feed: str = Field(description="the feed (by name) that serves its bars")
    source: str | None = Field(None, description="the feed's own name for it (default: id)")
    csv: str | list[str] | None = Field(
        None, description="file stem in a --data folder (default: id without ^, / as -), or a list of stems "
        "stitched into one history, the main source last (it wins where they overlap)")
    listed: date | None = Field(
        None, description="the day the asset began trading: a CSV history (replay, backtest) starting later says "
        "'highest since' its first day, never 'all-time' (live feeds report their own truncation)")
    asset_class: Literal["index", "etf", "crypto", "composite", "breadth"] = Field(
        "index", description="breadth: a share of an index's members (the fragility feed's series), in percent")
    history_feed: str | None = Field(None, description="a feed with a longer history to backfill from")
    history_source: str | None = Field(None, description="the history feed's name for it")

    @property
    def source_name(self) -> str:
        """Return the symbol's name at its feed."""
        return self.source or self.id

    @field_validator("csv")
    @classmethod
    def _check_csv(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and (not value or not all(stem.strip() for stem in value)):
            raise ValueError("give at least one file stem, none of them empty")
        return value

    @property
    def csv_stems(self) -> list[str]:
        """Return the CSV file stems of the symbol's history, the main source last."""
        if isinstance(self.csv, list):
            return list(self.csv)
        return [self.csv or self.id.lstrip("^").replace("/", "-")]

    @property
    def csv_stem(self) -> str:
        """Return the CSV file stem of the symbol's main source (the last of `csv_stems`)."""
        return self.csv_stems[-1]


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
    cooldown: timedelta | None = Field(
        None, description="minimum time between two alerts of this rule per symbol, e.g. 6h")

    @field_validator("cooldown", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        """Parse '30m', '6h', '2d' once, here; the engine reads a timedelta."""
        if value is None or isinstance(value, timedelta):
            return value
        parsed = to_timedelta(str(value))
        if parsed is None:
            raise PydanticCustomError("duration", "must be a duration like 30m, 6h or 2d")
        return parsed

    @field_serializer("cooldown")
    def _as_written(self, value: timedelta | None) -> str | None:
        """Dump a cooldown the way config.yaml writes it, so a dumped config loads again."""
        return format_duration(value) if value is not None else None

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
        if not isinstance(value, list):
            return value
        admins = [str(v) for v in value]
        for admin in admins:
            # A name (@alice), an empty ${VAR:-} or a null can never match a sender: say so, not refuse in silence.
            if not ADMIN_ID.fullmatch(admin):
                raise PydanticCustomError(
                    "admin_id", "{admin} is not a user id: write the number, alone or after its chat service "
                    "(123456789, telegram:123456789, discord:123456789012345678)", {"admin": repr(admin)[:60]})
        return admins

    def symbol(self, symbol_id: str) -> SymbolConfig | None:
        """Return a symbol's config by id."""
        return next((s for s in self.symbols if s.id == symbol_id), None)

    def bindings(self) -> list[RuleBinding]:
        """Bind every enabled rule to its symbols and its notify policy, once."""
        return [RuleBinding(rule, tuple(config.symbols), policy_from(config.frequency, config.cooldown))
                for rule, config in self.build_rules()]

    def build_rules(self) -> list[tuple[Rule[Any], RuleConfig]]:
        """Instantiate every enabled rule with its validated parameters."""
        built = []
        for rule in self.rules:
            if rule.enabled:
                kind = RULES[rule.kind]
                built.append((kind(rule.id, kind.Params(**rule.params)), rule))
        return built
