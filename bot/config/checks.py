"""Cross-checks of a parsed config: kinds and their settings, and every name that refers to another entry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from alerts.rules import RULES
from bot.config.messages import (
    describe_error,
    did_you_mean,
    format_path,
    shown,
    validation_problems,
)
from bot.config.models import Config, FeedConfig, RuleConfig
from bot.config.source import Located

# Rule parameters that name other config entries: (rule kind, parameter) -> what they name.
# trigger_rules may also name a rule kind ("new_ath" means any new_ath rule's events).
RULE_REFERENCES = {
    ("follow_through", "leaders"): "symbol",
    ("follow_through", "trigger_rules"): "rule or kind",
    ("follow_through", "confirm_rules"): "rule",
}


def _check_kind(
    what: str, kind: str, registry: Mapping[str, Any], model_of: Callable[[Any], type[BaseModel]],
    settings: dict[str, Any], common: type[BaseModel], path: tuple[Any, ...], where: Located,
) -> list[str]:
    """Check one rule's or feed's kind and its kind-specific keys against the kind's model (loading only that kind)."""
    loc = path + ("kind",)
    if kind not in registry:
        return [f"{format_path(loc)}: unknown {what} kind '{shown(kind)}'{did_you_mean(kind, list(registry))} {where.where(loc)}"]
    model = model_of(registry[kind])
    try:
        model(**settings)
    except ValidationError as exc:
        allowed = list(model.model_fields) + list(common.model_fields)
        return [f"{format_path(path + tuple(e['loc']))}: {describe_error(e, allowed)} {where.where(path + tuple(e['loc']))}"
                for e in exc.errors()]
    return []


def validate_kind_settings(config: Config, where: Located) -> list[str]:
    """Check each rule's, feed's and channel's own settings against its kind's model."""
    # Function-level: the registries load only the kinds and channels this config names.
    from bot.feeds import FEEDS
    from bot.notifiers import NOTIFIERS

    problems: list[str] = []
    for index, rule in enumerate(config.rules):
        problems += _check_kind("rule", rule.kind, RULES, lambda kind: kind.Params, rule.params, RuleConfig,
                                ("rules", index), where)
    for name, feed in config.feeds.items():
        problems += _check_kind("feed", feed.kind, FEEDS, lambda kind: kind.Settings, feed.settings, FeedConfig,
                                ("feeds", name), where)
    for name, settings in config.channels.items():
        path = ("channels", name)
        if name not in NOTIFIERS:
            problems.append(f"{format_path(path)}: unknown channel{did_you_mean(name, list(NOTIFIERS))} {where.where(path)}")
            continue
        channel = NOTIFIERS[name].Settings
        try:
            channel.model_validate(settings or {})
        except ValidationError as exc:
            problems.extend(validation_problems(exc, channel, path, where))
    return problems


def validate_references(config: Config, where: Located) -> list[str]:
    """Check that symbols name real feeds and rules name real symbols, and that ids are unique."""
    problems: list[str] = []
    seen: set[str] = set()
    for index, symbol in enumerate(config.symbols):
        path = ("symbols", index)
        if symbol.id in seen:
            id_loc = path + ("id",)
            problems.append(f"{format_path(id_loc)}: symbol '{shown(symbol.id)}' is listed twice {where.where(id_loc)}")
        seen.add(symbol.id)
        for key in ("feed", "history_feed"):
            feed = getattr(symbol, key)
            if feed is not None and feed not in config.feeds:
                hint = did_you_mean(feed, list(config.feeds), "feeds")
                problems.append(f"{format_path(path + (key,))}: no feed named '{shown(feed)}'{hint} {where.where(path + (key,))}")
    rule_ids: set[str] = set()
    for index, rule in enumerate(config.rules):
        path = ("rules", index)
        if rule.id in rule_ids:
            id_loc = path + ("id",)
            problems.append(f"{format_path(id_loc)}: rule id '{shown(rule.id)}' is used twice {where.where(id_loc)}")
        rule_ids.add(rule.id)
        for position, symbol_id in enumerate(rule.symbols):
            if symbol_id not in seen:
                hint = did_you_mean(symbol_id, list(seen), "")
                loc: tuple[str | int, ...] = path + ("symbols", position)
                problems.append(f"{format_path(loc)}: unknown symbol '{shown(symbol_id)}'{hint} {where.where(loc)}")
    return problems


def validate_rule_links(config: Config, where: Located) -> list[str]:
    """Check the names inside rule parameters: leaders, trigger and confirm rules, and the keys of `levels`."""
    symbols = [s.id for s in config.symbols]
    rule_ids = [r.id for r in config.rules]
    problems: list[str] = []
    for index, rule in enumerate(config.rules):
        params = _valid_params(rule)
        if params is None:
            continue  # its kind or settings are wrong: validate_kind_settings says so
        for (kind, name), what in RULE_REFERENCES.items():
            if rule.kind != kind:
                continue
            known = symbols if what == "symbol" else rule_ids + (list(RULES) if what == "rule or kind" else [])
            for position, value in enumerate(getattr(params, name)):
                if value not in known:
                    loc = ("rules", index, name, position)
                    listing = "symbols" if what == "symbol" else "rules"
                    problems.append(f"{format_path(loc)}: no {what.split()[0]} named '{shown(value)}'"
                                    f"{did_you_mean(value, known, listing)} {where.where(loc)}")
        levels = getattr(params, "levels", None)
        if isinstance(levels, Mapping):
            for symbol in levels:
                if symbol not in rule.symbols:
                    loc = ("rules", index, "levels", symbol)
                    problems.append(f"{format_path(loc)}: '{shown(symbol)}' is not one of this rule's symbols"
                                    f"{did_you_mean(symbol, rule.symbols, 'its symbols')} {where.where(loc)}")
    return problems


def validate_composite_members(config: Config, where: Located) -> list[str]:
    """Check that every composite index is made of configured symbols."""
    from bot.feeds import FEEDS

    symbols = [s.id for s in config.symbols]
    problems: list[str] = []
    for feed_name, feed in config.feeds.items():
        if feed.kind != "composite":
            continue
        try:
            settings = FEEDS["composite"].Settings(**feed.settings)
        except ValidationError:
            continue  # validate_kind_settings says what is wrong
        indexes = getattr(settings, "indexes", {})
        for index_name, index in indexes.items():
            for position, member in enumerate(index.members):
                if member not in symbols:
                    loc = ("feeds", feed_name, "indexes", index_name, "members", position)
                    problems.append(f"{format_path(loc)}: no symbol named '{shown(member)}'"
                                    f"{did_you_mean(member, symbols, 'symbols')} {where.where(loc)}")
        # A symbol served by the composite needs its index defined, or every poll fails for it ("no index").
        for position, symbol in enumerate(config.symbols):
            if symbol.feed == feed_name and symbol.source_name not in indexes:
                at: tuple[str | int, ...] = ("symbols", position, "feed")
                problems.append(f"{format_path(at)}: composite feed '{shown(feed_name)}' has no index "
                                f"'{shown(symbol.source_name)}' (its indexes: {', '.join(indexes) or 'none'}; "
                                f"define feeds.{shown(feed_name)}.indexes.{shown(symbol.source_name)}.members) "
                                f"{where.where(at)}")
    return problems


def validate_has_rules(config: Config, where: Located) -> list[str]:
    """Refuse a config without rules: the bot would run and never alert."""
    if config.rules:
        return []
    return [f"rules: no rules, so riskon would never alert; add at least one (docs/rules.md) {where.where(('rules',))}"]


def cross_check(config: Config, where: Located) -> list[str]:
    """Run every cross-check and return all problems found."""
    return (validate_has_rules(config, where) + validate_references(config, where)
            + validate_kind_settings(config, where) + validate_rule_links(config, where)
            + validate_composite_members(config, where))


def _valid_params(rule: RuleConfig) -> Any:
    kind = RULES.get(rule.kind)
    if kind is None:
        return None
    try:
        return kind.Params(**rule.params)
    except (ValidationError, TypeError):
        return None
