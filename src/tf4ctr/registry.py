"""One small name -> object registry, shared by models, encoders, SSEMs and fusions.

Names are case-insensitive; aliases map other spellings (the paper's "MoE" for MMoE) to a
name. A missing name is a ValueError that lists what exists, which callers turn into a
config error naming their key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Mapping[str, T], Generic[T]):
    """``kind`` names what is registered ("model", "encoder", ...), for messages."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def add(self, name: str, item: T, *aliases: str) -> T:
        key = name.lower()
        if key in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[key] = item
        for alias in aliases:
            self._aliases[alias.lower()] = key
        return item

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        return lambda item: self.add(name, item, *aliases)

    def canonical(self, name: str) -> str:
        """The registered name ``name`` (or its alias) stands for; ValueError if none."""
        key = self._aliases.get(name.lower(), name.lower())
        if key not in self._items:
            raise ValueError(
                f"unknown {self.kind} {name!r} (expected one of: {', '.join(sorted(self._items))})"
            )
        return key

    def __getitem__(self, name: str) -> T:
        return self._items[self.canonical(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
