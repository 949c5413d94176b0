"""Who is online in a conversation.

Rooms report their local sessions' users; the tracker answers whether that
changed the user's online state for the whole service. In one process that is
the local count; with Redis (state.redis) it spans processes with a
heartbeat, so a process that dies stops counting after a bounded time.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol


class PresenceTracker(Protocol):
    async def join(self, conversation_id: str, user_id: str) -> bool:
        """Record one more local session of the user; True if the user just came online."""
        ...

    async def leave(self, conversation_id: str, user_id: str) -> bool:
        """Record one session fewer; True if the user just went offline everywhere."""
        ...

    async def online(self, conversation_id: str) -> list[str]: ...

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class MemoryPresence:
    def __init__(self) -> None:
        self._counts: dict[str, Counter[str]] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._counts.clear()

    async def join(self, conversation_id: str, user_id: str) -> bool:
        counts = self._counts.setdefault(conversation_id, Counter())
        counts[user_id] += 1
        return counts[user_id] == 1

    async def leave(self, conversation_id: str, user_id: str) -> bool:
        counts = self._counts.get(conversation_id)
        if counts is None or counts[user_id] <= 0:
            return False
        counts[user_id] -= 1
        if counts[user_id] == 0:
            del counts[user_id]
            if not counts:
                del self._counts[conversation_id]
            return True
        return False

    async def online(self, conversation_id: str) -> list[str]:
        return sorted(self._counts.get(conversation_id, ()))
