"""A connection's outgoing side: a send queue bounded in frames and bytes.

`websockets.broadcast()` and most peers queue without bound, which is how one
slow client grows a server's memory. Here the policy is written down: when
either bound is reached, the session is marked overloaded and its connection
is closed with 1013 ("try again later"); the client reconnects and recovers
with `since`. Nobody else's delivery waits for it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

# Close codes of the protocol (docs/protocol.md).
CLOSE_SLOW_CONSUMER = 1013
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008


class Session:
    __slots__ = (
        "_bytes",
        "_queue",
        "_wakeup",
        "close_code",
        "close_reason",
        "closed",
        "id",
        "last_seen",
        "max_bytes",
        "max_frames",
        "subscriptions",
        "user_id",
    )

    def __init__(self, session_id: int, user_id: str, max_frames: int, max_bytes: int) -> None:
        self.id = session_id
        self.user_id = user_id
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._queue: deque[str] = deque()
        self._bytes = 0
        self._wakeup = asyncio.Event()
        self.closed = False
        self.close_code = 1000
        self.close_reason = ""
        self.subscriptions: set[str] = set()
        self.last_seen = time.monotonic()

    def __hash__(self) -> int:
        return self.id

    def send(self, frame: str) -> bool:
        """Queue a frame without waiting. False if the session is (now) closed."""
        if self.closed:
            return False
        size = len(frame)
        if len(self._queue) >= self.max_frames or self._bytes + size > self.max_bytes:
            self.close(CLOSE_SLOW_CONSUMER, "slow consumer: send queue full")
            return False
        self._queue.append(frame)
        self._bytes += size
        if len(self._queue) == 1:
            self._wakeup.set()
        return True

    def can_take(self, frames: int, size: int) -> bool:
        """Whether this many frames fit in the queue now, with room left for live traffic."""
        return (
            len(self._queue) + frames <= self.max_frames // 2
            and self._bytes + size <= self.max_bytes // 2
        )

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self.close_reason = reason
        self._queue.clear()
        self._bytes = 0
        self._wakeup.set()

    @property
    def queued_frames(self) -> int:
        return len(self._queue)

    async def drain(self, send: Callable[[str], Awaitable[None]]) -> None:
        """Write queued frames until the session closes. Run as the connection's writer."""
        queue = self._queue
        while not self.closed:
            if not queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            frame = queue.popleft()
            self._bytes -= len(frame)
            await send(frame)
