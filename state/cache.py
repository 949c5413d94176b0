"""Read-through caches that are invalidated on write, never merely left to expire.

Invalidation bumps a namespace's version (for example one user's conversation
lists); keys embed the version, so every older entry becomes unreachable at once
and, with Redis, on every process at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: float) -> None: ...
    async def version(self, namespace: str) -> int: ...
    async def bump(self, namespaces: list[str]) -> None: ...


class MemoryCache:
    def __init__(self, max_entries: int = 50_000, clock: Callable[[], float] = time.monotonic):
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._versions: dict[str, int] = {}
        self._max = max_entries
        self._clock = clock

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def version(self, namespace: str) -> int:
        return self._versions.get(namespace, 0)

    async def bump(self, namespaces: list[str]) -> None:
        for namespace in namespaces:
            self._versions[namespace] = self._versions.get(namespace, 0) + 1
