"""asyncio's Queue and Event for objects that exist once per connection.

`asyncio.Queue()` allocates four deques up front (items, getters, putters, and its
`join()` event's waiters) and `asyncio.Event()` one: about 3.8 KB per WebSocket
connection before a single frame arrives, though an idle connection's queue is empty
and nobody waits on its event. These keep nothing until they are used. They offer only
what server/transport.py's protocol needs of them (unbounded, no `join`), with the same
behaviour: items wait in the queue until a getter takes them, so a getter cancelled
after its wake-up loses nothing.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")
U = TypeVar("U")


def _with(items: list[U] | None, item: U) -> list[U]:
    """`items` with `item` appended: a list is made only for the first one."""
    if items is None:
        return [item]
    items.append(item)
    return items


def _without(items: list[U] | None, item: U) -> list[U] | None:
    """`items` without `item`: None once empty, so an idle object holds no list."""
    if items is not None and item in items:
        items.remove(item)
    return items or None


class SlimQueue(Generic[T]):
    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: list[T] | None = None
        self._getters: list[asyncio.Future[None]] | None = None

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def put_nowait(self, item: T) -> None:
        self._items = _with(self._items, item)
        self._wake_one()

    def get_nowait(self) -> T:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.pop(0)
        if not items:
            self._items = None
        return item

    async def get(self) -> T:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            self._getters = _with(self._getters, getter)
            try:
                await getter
            except BaseException:
                getter.cancel()  # in case it is not done yet
                self._forget(getter)
                if not getter.cancelled() and self._items:
                    # Woken, then cancelled: the item it was woken for goes to the next getter.
                    self._wake_one()
                raise
            self._forget(getter)
        return self.get_nowait()

    def _wake_one(self) -> None:
        for getter in self._getters or ():
            if not getter.done():
                getter.set_result(None)
                return

    def _forget(self, getter: asyncio.Future[None]) -> None:
        self._getters = _without(self._getters, getter)


class SlimEvent:
    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters = _with(self._waiters, waiter)
        try:
            await waiter
            return True
        finally:
            self._waiters = _without(self._waiters, waiter)
