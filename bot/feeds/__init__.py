"""The one registry of feed kinds, by the `kind` name used in config.yaml; a kind's module loads when it is named."""

from __future__ import annotations

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


def _yahoo() -> FeedKind:
    from bot.feeds import yahoo

    return FeedKind(yahoo.YahooSettings, yahoo.build)


def _exchange() -> FeedKind:
    from bot.feeds import exchange

    return FeedKind(exchange.ExchangeSettings, exchange.build)


def _composite() -> FeedKind:
    from bot.feeds import composite

    return FeedKind(composite.CompositeSettings, composite.build)


def _flows() -> FeedKind:
    from bot.feeds import flows

    return FeedKind(flows.FlowsSettings, flows.build)


def _fragility() -> FeedKind:
    from bot.feeds import fragility

    return FeedKind(fragility.FragilitySettings, fragility.build)


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
