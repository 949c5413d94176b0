"""How many sockets each user holds open, so one token cannot open thousands.

`acquire` counts a connection only if the user is below the limit; every successful
`acquire` is paired with one `release` when the socket ends. In one process the count
is local; with Redis (state.redis.RedisConnectionCounter) it spans every node, and a
node that dies stops counting once its heartbeat key lapses.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol


class ConnectionCounter(Protocol):
    async def acquire(self, user_id: str, limit: int) -> bool:
        """Count one more connection of the user unless `limit` are open; True if counted."""
        ...

    async def release(self, user_id: str) -> None:
        """One connection counted by `acquire` ended."""
        ...


class MemoryConnectionCounter:
    def __init__(self) -> None:
        self._open: Counter[str] = Counter()

    async def acquire(self, user_id: str, limit: int) -> bool:
        if self._open[user_id] >= limit:
            return False
        self._open[user_id] += 1
        return True

    async def release(self, user_id: str) -> None:
        if self._open[user_id] <= 1:
            # No zero entries left behind: a million users who came and went cost nothing.
            self._open.pop(user_id, None)
        else:
            self._open[user_id] -= 1

    def open(self, user_id: str) -> int:
        return self._open[user_id]
