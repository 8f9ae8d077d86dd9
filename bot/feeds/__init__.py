"""The one registry of feed kinds, by the `kind` name used in config.yaml: a kind's settings load when it is named,
its feed's module when one is built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from pydantic import BaseModel

from alerts.registry import LazyRegistry, loads
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
        built: Feed = loads(f"bot.feeds.{module}", "build")()(*args)
        return built

    return build


def _live(module: str, settings: str) -> Callable[[], FeedKind]:
    """Return a live kind's loader: its settings model from bot.feeds.settings, its feed's module only when built."""
    return lambda: FeedKind(loads("bot.feeds.settings", settings)(), _built_by(module))


FEEDS: LazyRegistry[FeedKind] = LazyRegistry({
    "replay": _replay,
    "yahoo": _live("yahoo", "YahooSettings"),
    "exchange": _live("exchange", "ExchangeSettings"),
    "composite": _live("composite", "CompositeSettings"),
    "flows": _live("flows", "FlowsSettings"),
    "fragility": _live("fragility", "FragilitySettings"),
})

__all__ = ["FEEDS", "Feed", "FeedKind", "FeedResult", "MarksStale", "Replayable", "build_feed"]


def build_feed(name: str, kind: str, settings: Mapping[str, Any], symbols: Sequence[Any], store: Any) -> Feed:
    """Build a configured feed by its kind (settings as written under `feeds:` in config.yaml)."""
    feed_kind = FEEDS[kind]
    return feed_kind.build(name, feed_kind.Settings(**settings), list(symbols), store)
