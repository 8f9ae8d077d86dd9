"""The one registry of feed kinds, by the `kind` name used in config.yaml: a kind's settings load when it is named,
its feed's module when one is built."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from pydantic import BaseModel

from alerts.registry import LazyRegistry
from bot.feeds.base import Feed, FeedResult, MarksStale, Replayable


@dataclass(frozen=True)
class FeedKind:
    """A feed kind: its settings model and how to build one from config."""

    Settings: type[BaseModel]
    # build(name, settings, symbols: list[SymbolConfig], store) -> Feed
    build: Callable[..., Feed]


def _replay() -> FeedKind:
    from bot.feeds.replay import ReplayFeed, ReplaySettings

    return FeedKind(ReplaySettings, lambda name, settings, symbols, store: ReplayFeed(name, settings, symbols))


def _built_by(module: str) -> Callable[..., Feed]:
    """Return a kind's build function that loads the feed's module on its first call."""

    # Validating a config needs only the settings models: a replay or a backtest never builds a live feed.
    def build(*args: Any) -> Feed:
        built: Feed = importlib.import_module(f"bot.feeds.{module}").build(*args)
        return built

    return build


def _yahoo() -> FeedKind:
    from bot.feeds.settings import YahooSettings

    return FeedKind(YahooSettings, _built_by("yahoo"))


def _exchange() -> FeedKind:
    from bot.feeds.settings import ExchangeSettings

    return FeedKind(ExchangeSettings, _built_by("exchange"))


def _composite() -> FeedKind:
    from bot.feeds import composite

    return FeedKind(composite.CompositeSettings, composite.build)


def _flows() -> FeedKind:
    from bot.feeds.settings import FlowsSettings

    return FeedKind(FlowsSettings, _built_by("flows"))


def _fragility() -> FeedKind:
    from bot.feeds.settings import FragilitySettings

    return FeedKind(FragilitySettings, _built_by("fragility"))


FEEDS: LazyRegistry[FeedKind] = LazyRegistry({
    "replay": _replay,
    "yahoo": _yahoo,
    "exchange": _exchange,
    "composite": _composite,
    "flows": _flows,
    "fragility": _fragility,
})

__all__ = ["FEEDS", "Feed", "FeedKind", "FeedResult", "MarksStale", "Replayable", "build_feed"]


def build_feed(name: str, kind: str, settings: Mapping[str, Any], symbols: Sequence[Any], store: Any) -> Feed:
    """Build a configured feed by its kind (settings as written under `feeds:` in config.yaml)."""
    feed_kind = FEEDS[kind]
    return feed_kind.build(name, feed_kind.Settings(**settings), list(symbols), store)
