"""Name -> class registries, so filters, views and objectives are selected in YAML by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from catalog.errors import NotFound

T = TypeVar("T")


class UnknownName(NotFound, KeyError):
    """No component is registered under the name (the message lists the known names)."""


class Registry(Generic[T]):
    """A named table of components. `@REG.register("name")` adds one; `REG.get(name)` finds it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = item
            return item

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownName(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._items))}") from None

    def unregister(self, name: str) -> None:
        """Remove `name` (a component registered for a while, e.g. by a test)."""
        self._items.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
