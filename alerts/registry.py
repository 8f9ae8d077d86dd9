"""A registry by kind name whose entries load on first use, so a command pays only for the kinds its config names."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def loads(module: str, name: str) -> Callable[[], Any]:
    """Return a loader of `name` from `module`, importing the module when the loader is first called."""
    return lambda: getattr(importlib.import_module(module), name)


class LazyRegistry(Mapping[str, T]):
    """Map kind names to what each loads, importing a kind's module the first time that kind is looked up."""

    def __init__(self, loaders: Mapping[str, Callable[[], T]]) -> None:
        self._loaders = dict(loaders)
        self._loaded: dict[str, T] = {}

    def __getitem__(self, kind: str) -> T:
        loaded = self._loaded.get(kind)
        if loaded is None:
            loaded = self._loaded[kind] = self._loaders[kind]()
        return loaded

    def __contains__(self, kind: object) -> bool:
        return kind in self._loaders  # a name check never imports

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)
