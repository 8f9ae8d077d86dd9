"""The one registry of feed kinds, by the `kind` name used in config.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from pydantic import BaseModel

from bot.feeds import composite, exchange, flows, fragility, yahoo
from bot.feeds.base import Feed, FeedResult, MarksStale, Replayable
from bot.feeds.replay import ReplayFeed, ReplaySettings


@dataclass(frozen=True)
class FeedKind:
    """A feed kind: its settings model and how to build one from config."""

    Settings: type[BaseModel]
    # build(name, settings, symbols: list[SymbolConfig], store) -> Feed
    build: Callable[..., Feed]


FEEDS: dict[str, FeedKind] = {
    "replay": FeedKind(ReplaySettings, lambda name, settings, symbols, store: ReplayFeed(name, settings, symbols)),
    "yahoo": FeedKind(yahoo.YahooSettings, yahoo.build),
    "exchange": FeedKind(exchange.ExchangeSettings, exchange.build),
    "composite": FeedKind(composite.CompositeSettings, composite.build),
    "flows": FeedKind(flows.FlowsSettings, flows.build),
    "fragility": FeedKind(fragility.FragilitySettings, fragility.build),
}

__all__ = ["FEEDS", "Feed", "FeedKind", "FeedResult", "MarksStale", "Replayable", "build_feed"]


def build_feed(name: str, kind: str, settings: Mapping[str, Any], symbols: Sequence[Any], store: Any) -> Feed:
    """Build a configured feed by its kind (settings as written under `feeds:` in config.yaml)."""
    feed_kind = FEEDS[kind]
    return feed_kind.build(name, feed_kind.Settings(**settings), list(symbols), store)
